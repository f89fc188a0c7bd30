"""Ordering keys and debounce in the SQLite backend (see app/flow.py for what they mean).

A keyed delivery carries its key (`pkey`) and its step's `concurrency_per_key` (`plimit`).
Row ids follow commit order, which is emit order across processes (commits of one file are
serial), so "the first n unsettled rows of a key" is a claim condition: a row is claimable when
fewer than `plimit` rows of its key came before it. A leased, retrying or scheduled row keeps
its place and so holds its key; an acknowledged or dead-lettered one is deleted and frees it.
A retrying row of a step with `key_on_failure: "release"` gives its key up (`pkey` moves to
`rejoin`) until it is due; then the claim puts it back as a new row, behind its key's queue.

A debounced delivery (`dkey`) that has not run yet takes in the next emit of its key: its data
and trace become the newest, its due time moves to the end of the new quiet time (capped at the
burst's first emit + max_wait, the row's `created_at`).

A step whose rate limit has a key stamps each delivery with its rate key (`rkey`), and a claim
takes a due delivery only while its key has room in the window. One whose key has none waits:
its due time moves to when a slot of its key frees (the j-th waiting one of a key to the j-th
slot), so it is neither scanned again before then nor in the way of other keys' deliveries. A
dead letter keeps its keys, so a replayed delivery takes its key's turn like a new one.

A rate limit's claims are counted by `sqlite_rates`, in the tables made here.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from app.types import FlowPlan, Message

__all__ = [
    "CLAIMABLE",
    "CLAIMED",
    "COLUMNS",
    "DEAD_INSERT",
    "INSERT",
    "RELEASE_RETRY",
    "REPLAY",
    "RETRY",
    "add_key_columns",
    "debounced",
    "rejoin",
    "row",
]

COLUMNS = "step, topic, data, trace_id, due, created_at, pkey, plimit, dkey, rkey"
CLAIMED = "id, step, topic, data, trace_id, attempt, created_at, first_run"
"""What a claim returns of each delivery it leases."""
INSERT = f"INSERT INTO deliveries ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
DEAD_INSERT = (
    "INSERT INTO dead_letters (step, topic, data, trace_id, attempts, error, traceback, "
    "failed_at, pkey, plimit, rkey) SELECT ?, ?, ?, ?, ?, ?, ?, ?, pkey, plimit, rkey "
    "FROM deliveries WHERE id = ? AND attempt = ?"
)
"""A dead letter that keeps its delivery's keys (the last two parameters: the delivery id and
the attempt it was claimed with; a row claimed again since gives none)."""
REPLAY = (
    "INSERT INTO deliveries (step, topic, data, trace_id, due, created_at, pkey, plimit, rkey) "
    "SELECT step, topic, data, trace_id, ?, ?, pkey, plimit, rkey FROM dead_letters"
)
"""Dead letters back to the queue with their keys (parameters: due, created_at)."""
_NONE = FlowPlan()

# With a limit of 1 a row may go when it is the first of its key: one index seek per candidate.
# With a limit n up to _WALKED, when its id is at most the key's n-th (a walk of n entries of
# the (step, pkey, id) index; SQLite takes only constants for OFFSET, hence one branch per n).
# A larger limit counts the rows before it, which is quadratic in one key's queue length.
_WALKED = 16
_NTH = (
    "WHEN {n} THEN (SELECT e.id FROM deliveries e WHERE e.step = d.step AND e.pkey = d.pkey "
    "ORDER BY e.id LIMIT 1 OFFSET {offset})"
)
CLAIMABLE = (
    "(pkey IS NULL OR (plimit = 1 AND d.id = (SELECT MIN(e.id) FROM deliveries e "
    "WHERE e.step = d.step AND e.pkey = d.pkey)) "
    f"OR (plimit BETWEEN 2 AND {_WALKED} AND d.id <= COALESCE(CASE d.plimit "
    + " ".join(_NTH.format(n=n, offset=n - 1) for n in range(2, _WALKED + 1))
    + f" END, d.id)) OR (plimit > {_WALKED} AND (SELECT COUNT(*) "
    "FROM deliveries e WHERE e.step = d.step AND e.pkey = d.pkey AND e.id < d.id) < d.plimit))"
)
"""SQL condition on a `deliveries d` row: its key (if any) lets it run now."""


def add_key_columns(conn: sqlite3.Connection) -> None:
    """Add the key columns to a database created before them (and their index), in one write
    transaction: processes opening an earlier version's file at once (a server and its
    workers after an upgrade) would otherwise each read a column as missing and all but the
    first fail adding it ("duplicate column name")."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _add_key_columns(conn)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def _add_key_columns(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
    if "pkey" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN pkey TEXT")
    if "plimit" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN plimit INTEGER")
    for name in ("dkey", "rkey"):
        if name not in columns:
            conn.execute(f"ALTER TABLE deliveries ADD COLUMN {name} TEXT")
    if "first_run" not in columns:  # set by a retry: where its Retry window starts
        conn.execute("ALTER TABLE deliveries ADD COLUMN first_run REAL")
    if "rejoin" not in columns:  # the key a released retry queues behind again once due
        conn.execute("ALTER TABLE deliveries ADD COLUMN rejoin TEXT")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_step_rejoin ON deliveries (step, due) "
        "WHERE rejoin IS NOT NULL"
    )
    dead = {row[1] for row in conn.execute("PRAGMA table_info(dead_letters)")}
    for name, kind in (("pkey", "TEXT"), ("plimit", "INTEGER"), ("rkey", "TEXT")):
        if name not in dead:
            conn.execute(f"ALTER TABLE dead_letters ADD COLUMN {name} {kind}")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_step_key ON deliveries (step, pkey, id) "
        "WHERE pkey IS NOT NULL"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_step_dkey ON deliveries (step, dkey) "
        "WHERE dkey IS NOT NULL"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS rate_log (step TEXT NOT NULL, at REAL NOT NULL)")
    logged = {row[1] for row in conn.execute("PRAGMA table_info(rate_log)")}
    if "rkey" not in logged:
        conn.execute("ALTER TABLE rate_log ADD COLUMN rkey TEXT")
    if "n" not in logged:  # claims a row stands for; an older version's rows (NULL) one each
        conn.execute("ALTER TABLE rate_log ADD COLUMN n INTEGER")
    conn.execute("CREATE INDEX IF NOT EXISTS rate_log_step_at ON rate_log (step, at)")
    # Partial: a step-wide limit's claims (rkey NULL) do not pay for a second index.
    conn.execute("DROP INDEX IF EXISTS rate_log_step_key")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS rate_log_step_rkey ON rate_log (step, rkey, at) "
        "WHERE rkey IS NOT NULL"
    )
    # AUTOINCREMENT: an id is never given twice, even once every row has expired and gone, so
    # "the rows after the last one read" misses none.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS rate_claims (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "step TEXT NOT NULL, at REAL NOT NULL, keys TEXT NOT NULL, n INTEGER)"
    )
    claimed = {row[1] for row in conn.execute("PRAGMA table_info(rate_claims)")}
    if "n" not in claimed:  # how many keys the row holds; an earlier version's rows (NULL) say
        conn.execute("ALTER TABLE rate_claims ADD COLUMN n INTEGER")  # it in their keys alone
    conn.execute("CREATE INDEX IF NOT EXISTS rate_claims_step_at ON rate_claims (step, at)")


RETRY = (
    "UPDATE deliveries SET due = ?, leased = 0, attempt = ?, first_run = COALESCE(first_run, ?) "
    "WHERE id = ? AND attempt = ?"
)
"""A retry waits (due, attempt to store, first run, id, the attempt it was claimed with)."""
RELEASE_RETRY = (
    "UPDATE deliveries SET due = ?, leased = 0, attempt = ?, first_run = COALESCE(first_run, ?), "
    "rejoin = COALESCE(pkey, rejoin), pkey = NULL WHERE id = ? AND attempt = ?"
)
"""A retry that gives up its ordering key while it waits (parameters as the plain retry's)."""
_REJOINING = "FROM deliveries WHERE step = ? AND rejoin IS NOT NULL AND due <= ?"


def rejoin(conn: sqlite3.Connection, step: str, now: float) -> None:
    """Put the released retries of `step` that are due back behind their keys' queues (as new
    rows: ids are the order of a key), before a claim could take one without its key."""
    if conn.execute(f"SELECT 1 {_REJOINING} LIMIT 1", (step, now)).fetchone() is None:
        return
    conn.execute(
        "INSERT INTO deliveries (step, topic, data, trace_id, attempt, due, created_at, pkey, "
        "plimit, dkey, rkey, first_run) SELECT step, topic, data, trace_id, attempt, due, "
        f"created_at, rejoin, plimit, dkey, rkey, first_run {_REJOINING} ORDER BY due, id",
        (step, now),
    )
    conn.execute(f"DELETE {_REJOINING}", (step, now))


def row(m: Message, step: str, data: str, due: float, now: float) -> tuple[Any, ...]:
    """The `COLUMNS` of a new delivery of `m` to `step`."""
    plan = (m.partitions or {}).get(step) or _NONE
    return (
        step,
        m.topic,
        data,
        m.trace_id,
        due,
        now,
        plan.key,
        plan.limit,
        plan.debounce_key,
        plan.rate_key,
    )


def debounced(conn: sqlite3.Connection, m: Message, step: str, data: str, now: float) -> bool:
    """Store a debounced delivery of `m` to `step` (into its burst's row when one waits);
    False when the step does not debounce."""
    plan = (m.partitions or {}).get(step)
    if plan is None or plan.debounce_key is None:
        return False
    found = conn.execute(
        "SELECT id, created_at FROM deliveries WHERE step = ? AND dkey = ? AND leased = 0 "
        "AND attempt = 0 ORDER BY id DESC LIMIT 1",
        (step, plan.debounce_key),
    ).fetchone()
    start = now if found is None else found[1]
    due = now + plan.quiet
    if plan.max_wait:
        due = min(due, start + plan.max_wait)
    if found is None:
        conn.execute(INSERT, row(m, step, data, due, now))
    else:
        conn.execute(
            "UPDATE deliveries SET data = ?, trace_id = ?, due = ? WHERE id = ?",
            (data, m.trace_id, due, found[0]),
        )
    return True
