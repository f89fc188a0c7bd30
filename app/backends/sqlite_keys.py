"""Ordering keys and debounce in the SQLite backend (see app/flow.py for what they mean).

A keyed delivery carries its key (`pkey`) and its step's `concurrency_per_key` (`plimit`).
Row ids follow commit order, which is emit order across processes (commits of one file are
serial), so "the first n unsettled rows of a key" is a claim condition: a row is claimable when
fewer than `plimit` rows of its key came before it. A leased, retrying or scheduled row keeps
its place and so holds its key; an acknowledged or dead-lettered one is deleted and frees it.

A debounced delivery (`dkey`) that has not run yet takes in the next emit of its key: its data
and trace become the newest, its due time moves to the end of the new quiet time (capped at the
burst's first emit + max_wait, the row's `created_at`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from app.types import FlowPlan, Message

__all__ = [
    "CLAIMABLE",
    "COLUMNS",
    "add_key_columns",
    "debounced",
    "rate_allowance",
    "rate_spent",
    "row",
]

COLUMNS = "step, topic, data, trace_id, due, created_at, pkey, plimit, dkey"
_INSERT = f"INSERT INTO deliveries ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_NONE = FlowPlan()

# With a limit of 1 a row may go when it is the first of its key: one index seek per candidate.
# A larger limit counts the rows before it, which is quadratic in one key's queue length.
CLAIMABLE = (
    "(pkey IS NULL OR (plimit = 1 AND d.id = (SELECT MIN(e.id) FROM deliveries e "
    "WHERE e.step = d.step AND e.pkey = d.pkey)) OR (plimit > 1 AND (SELECT COUNT(*) "
    "FROM deliveries e WHERE e.step = d.step AND e.pkey = d.pkey AND e.id < d.id) < d.plimit))"
)
"""SQL condition on a `deliveries d` row: its key (if any) lets it run now."""


def add_key_columns(conn: sqlite3.Connection) -> None:
    """Add the key columns to a database created before them (and their index)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
    if "pkey" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN pkey TEXT")
    if "plimit" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN plimit INTEGER")
    if "dkey" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN dkey TEXT")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_step_key ON deliveries (step, pkey, id) "
        "WHERE pkey IS NOT NULL"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_step_dkey ON deliveries (step, dkey) "
        "WHERE dkey IS NOT NULL"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS rate_log (step TEXT NOT NULL, at REAL NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS rate_log_step_at ON rate_log (step, at)")


# A rate limit counts claims in a sliding window, inside the claim's write transaction, so
# processes sharing the file see each other's claims and never exceed it together.
def rate_allowance(
    conn: sqlite3.Connection, step: str, wants: int, limit: tuple[int, float], now: float
) -> int:
    """How many of `wants` deliveries of `step` may be claimed now under its rate limit."""
    n, window = limit
    conn.execute("DELETE FROM rate_log WHERE step = ? AND at <= ?", (step, now - window))
    (used,) = conn.execute("SELECT COUNT(*) FROM rate_log WHERE step = ?", (step,)).fetchone()
    return min(wants, n - used)


def rate_spent(conn: sqlite3.Connection, step: str, count: int, now: float) -> None:
    conn.executemany("INSERT INTO rate_log (step, at) VALUES (?, ?)", [(step, now)] * count)


def row(m: Message, step: str, data: str, due: float, now: float) -> tuple[Any, ...]:
    """The `COLUMNS` of a new delivery of `m` to `step`."""
    plan = (m.partitions or {}).get(step) or _NONE
    return (step, m.topic, data, m.trace_id, due, now, plan.key, plan.limit, plan.debounce_key)


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
        conn.execute(_INSERT, row(m, step, data, due, now))
    else:
        conn.execute(
            "UPDATE deliveries SET data = ?, trace_id = ?, due = ? WHERE id = ?",
            (data, m.trace_id, due, found[0]),
        )
    return True
