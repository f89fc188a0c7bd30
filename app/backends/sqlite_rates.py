"""Rate limits in the SQLite backend: claims counted in a sliding window, inside the claim's
write transaction, so processes sharing the file see each other's claims and never exceed a
limit together (the tables are made by `sqlite_keys.add_key_columns`).

A step-wide limit logs one `rate_log` row per claim, with how many it took.

A claim under a per-key rate limit writes one `rate_claims` row (the keys it took, as a JSON
list, and their number), not a row per delivery: a limit that never binds would otherwise pay
a row and two index entries per delivery, and delete them a window later. Each backend keeps
what it has read of those rows in memory (`RateWindows`) and reads, inside the claim's write
transaction, only the rows committed since (ids only grow: AUTOINCREMENT), so every process
counts every other's claims and the limit holds across them and across restarts. Earlier
versions logged one `rate_log` row per claimed delivery under its key; they are read once and
count in their window.

No key can have more claims in the window than the step has in all, so while the step's
claims in the window and the claim's size together stay within the limit, a claim takes what
the plain claim takes: no key is looked at, and the rows' keys stay unread JSON text. Only a
claim that could take some key past its limit reads them, and keeps each key's claim times
from then on, while the window stays that full.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from typing import Any

from app.backends.sqlite_keys import CLAIMABLE, CLAIMED

__all__ = ["RateWindows", "claim_rate_keyed", "rate_allowance", "rate_spent"]


def rate_allowance(
    conn: sqlite3.Connection, step: str, wants: int, limit: tuple[int, float, bool], now: float
) -> int:
    """How many of `wants` deliveries of `step` may be claimed now under its rate limit."""
    n, window, _ = limit
    conn.execute("DELETE FROM rate_log WHERE step = ? AND at <= ?", (step, now - window))
    (used,) = conn.execute(
        "SELECT COALESCE(SUM(COALESCE(n, 1)), 0) FROM rate_log WHERE step = ?", (step,)
    ).fetchone()
    return min(wants, n - used)


def rate_spent(conn: sqlite3.Connection, step: str, count: int, now: float) -> None:
    # One row for the claim, not one per delivery: the window's sum is the same.
    conn.execute("INSERT INTO rate_log (step, at, n) VALUES (?, ?, ?)", (step, now, count))


_encode = json.JSONEncoder(separators=(",", ":")).encode
Times = dict[str, float | deque[float]]


class _Window:
    """The claims of one step's window that a backend has read: the rows in id order, each
    [time, how many keys, its keys (a list, or the JSON text until read)], their total, and,
    while some key could reach its limit, each key's claim times in the same order."""

    __slots__ = ("legacy_until", "rows", "seen", "times", "total")

    def __init__(self) -> None:
        self.seen = -1  # the last rate_claims id read; -1 before the first read
        self.rows: deque[list[Any]] = deque()
        self.total = 0
        self.times: Times | None = None
        self.legacy_until: float | None = None

    def add(self, at: float, n: int | None, keys: str | list[str]) -> None:
        if n is None:  # an earlier version's row: its keys say how many
            keys = json.loads(keys) if isinstance(keys, str) else keys
            n = len(keys)
        self.rows.append([at, n, keys])
        self.total += n
        if self.times is not None:
            _count(self.times, at, _keys(self.rows[-1]))

    def keyed(self) -> Times:
        """Each key's claim times in the window, read from the rows once and kept after."""
        if self.times is None:
            self.times = {}
            for r in self.rows:
                _count(self.times, r[0], _keys(r))
        return self.times

    def refresh(self, conn: sqlite3.Connection, step: str, now: float, window: float) -> None:
        """Forget the claims out of the window (here and in the file) and read the new ones."""
        cut = now - window
        conn.execute("DELETE FROM rate_claims WHERE step = ? AND at <= ?", (step, cut))
        rows, times = self.rows, self.times
        # Rows come in commit order, so a key's oldest time is that of the first row holding it.
        while rows and rows[0][0] <= cut:
            gone = rows.popleft()
            self.total -= gone[1]
            if times is not None:
                for rk in _keys(gone):
                    held = times[rk]
                    if isinstance(held, deque):
                        held.popleft()
                        if held:
                            continue
                    del times[rk]
        if self.seen < 0:
            self._legacy(conn, step, cut, window)
        elif self.legacy_until is not None and now > self.legacy_until:
            conn.execute(
                "DELETE FROM rate_log WHERE step = ? AND rkey IS NOT NULL AND at <= ?", (step, cut)
            )
            self.legacy_until = None
        # NOT INDEXED: the rows after `seen` by id; the planner would take the step's whole
        # window through (step, at) instead.
        for id_, at, n, text in conn.execute(
            "SELECT id, at, n, keys FROM rate_claims NOT INDEXED WHERE id > ? AND step = ? "
            "ORDER BY id",
            (self.seen, step),
        ):
            self.seen = id_
            self.add(at, n, text)
        self.seen = max(self.seen, 0)

    def _legacy(self, conn: sqlite3.Connection, step: str, cut: float, window: float) -> None:
        # An earlier version's rows, one per claimed delivery: counted until they leave the
        # window, then deleted.
        conn.execute(
            "DELETE FROM rate_log WHERE step = ? AND rkey IS NOT NULL AND at <= ?", (step, cut)
        )
        found = conn.execute(
            "SELECT at, rkey FROM rate_log WHERE step = ? AND rkey IS NOT NULL ORDER BY at",
            (step,),
        ).fetchall()
        for at, rk in found:
            self.add(at, 1, [rk])
        if found:
            self.legacy_until = found[-1][0] + window


def _keys(r: list[Any]) -> list[str]:
    """The keys of a window row, read from its text the first time."""
    keys = r[2]
    if isinstance(keys, str):
        keys = r[2] = json.loads(keys)
    return keys


def _count(times: Times, at: float, keys: list[str]) -> None:
    for rk in keys:
        # A key's one claim in the window is its time alone: no deque unless it has two.
        held = times.get(rk)
        if held is None:
            times[rk] = at
        elif isinstance(held, deque):
            held.append(at)
        else:
            times[rk] = deque((held, at))


class RateWindows:
    """One backend's reading of per-key rate-limit claims, by step. It only ever holds rows
    read from the file (committed), so a claim that rolls back leaves nothing behind here."""

    def __init__(self) -> None:
        self.steps: dict[str, _Window] = {}

    def read(self, conn: sqlite3.Connection, step: str, now: float, window: float) -> _Window:
        found = self.steps.get(step)
        if found is None:
            found = self.steps[step] = _Window()
        found.refresh(conn, step, now, window)
        return found


_CLAIM = (
    "UPDATE deliveries SET due = ?, attempt = attempt + 1, leased = 1 "
    "WHERE id IN (SELECT id FROM deliveries d WHERE step = ? AND due <= ? "
    f"AND {CLAIMABLE} ORDER BY due LIMIT ?) "
    f"RETURNING {CLAIMED}, COALESCE(rkey, '')"
)
_LOGGED = "INSERT INTO rate_claims (step, at, n, keys) VALUES (?, ?, ?, ?)"


def claim_rate_keyed(
    conn: sqlite3.Connection,
    step: str,
    n: int,
    limit: tuple[int, float, bool],
    now: float,
    until: float,
    windows: RateWindows,
) -> list[Any]:
    """Claim (lease until `until`) up to `n` due deliveries of `step`, at most `limit[0]` per
    rate key per window of `limit[1]` seconds; the rows, as the plain claim returns them (and
    each one's rate key)."""
    rate, window = limit[0], limit[1]
    found = windows.read(conn, step, now, window)
    if found.total + n <= rate:
        # No key can pass the limit, with all the window's claims and all of this one its.
        if found.total + n <= rate // 2:  # far from it: stop keeping each key's times
            found.times = None
        rows = conn.execute(_CLAIM, (until, step, now, n)).fetchall()
        if rows:
            conn.execute(_LOGGED, (step, now, len(rows), _encode([r[8] for r in rows])))
        return rows
    counted = found.keyed()
    spent: dict[str, list[float]] = {}  # each key met: its claim times, this claim's included
    waiting: dict[str, int] = {}
    taken: list[str] = []
    rows = []
    # Claimed as the plain claim does, in one statement; those of spent keys are then handed
    # back (attempt uncounted) and moved out of the way, and the claim looks again, a few times.
    for _ in range(4):
        got = conn.execute(_CLAIM, (until, step, now, n - len(rows))).fetchall()
        got.sort()  # emit order: a key with room for fewer than it has here takes its first
        later: list[tuple[float, int]] = []
        for r in got:
            rk = r[8]
            times = spent.get(rk)
            if times is None:
                held = counted.get(rk)
                times = spent[rk] = (
                    [] if held is None else sorted(held) if isinstance(held, deque) else [held]
                )
            if len(times) < rate:
                rows.append(r)
                taken.append(rk)
                times.append(now)
            else:
                # The j-th waiting delivery of a key is due when the j-th slot of its window
                # frees.
                j = waiting[rk] = waiting.get(rk, -1) + 1
                later.append((times[j % rate] + window * (1 + j // rate), r[0]))
        if not later:
            break
        conn.executemany(
            "UPDATE deliveries SET due = ?, attempt = attempt - 1, leased = 0 WHERE id = ?", later
        )
        if len(rows) >= n:
            break
    if taken:
        conn.execute(_LOGGED, (step, now, len(taken), _encode(taken)))
    return rows
