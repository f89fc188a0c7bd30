"""Many rows in few statements: the deliveries INSERT and the acknowledgement DELETE.

`executemany` runs its statement once per row: a reset, a bind of every parameter and a step
each, and for the AUTOINCREMENT table a read and a write of `sqlite_sequence` per row. One
statement of many rows (`VALUES (...), (...)`, `WHERE id IN (?, ...)`) pays those once; for the
3-step chain that was a third of the INSERT's time and half of the DELETE's (measured per row
in one transaction of 100, the chain's shape). Chunks have power-of-two sizes up to `_CHUNK`,
so a connection's statement cache holds a handful of texts whatever the batch sizes, and a
statement's parameters stay far below SQLite's limit (999 in the oldest builds). An ack deletes
its row only at the attempt it was claimed with (a stale run's ack is dropped): one `AND attempt
= ?` per statement, the acks grouped by attempt.

A None is written as a literal NULL in the statement, not bound: the sqlite3 module binds a
None through its adapter lookup, about 0.8 us each on this machine, and a delivery without flow
control has four (its keys), which made the row cost three times that of its other values.
Consecutive rows with their Nones in the same places share a statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

__all__ = ["delete_claimed", "insert_rows"]

_CHUNK = 64


def _chunks(n: int) -> list[tuple[int, int]]:
    """(start, size) of the chunks of `n` rows: `_CHUNK`s, then the power-of-two remainder."""
    out: list[tuple[int, int]] = []
    start = 0
    size = _CHUNK
    while start < n:
        while size > n - start:
            size //= 2
        out.append((start, size))
        start += size
    return out


Nulls = tuple[bool, ...]
"""Which values of a row are None."""


@cache
def _insert(head: str, nulls: Nulls, rows: int) -> str:
    one = "(" + ",".join("NULL" if null else "?" for null in nulls) + ")"
    return f"{head} VALUES " + ",".join([one] * rows)


@cache
def _bound(nulls: Nulls) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """The values of a row that are bound (those not None), as a sequence."""
    keep = [i for i, null in enumerate(nulls) if not null]
    if len(keep) == 1:
        (only,) = keep
        return lambda row: (row[only],)
    return itemgetter(*keep) if keep else (lambda row: ())


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]]) -> None:
    """`head` ("INSERT INTO t (a, b)") with every row of `rows`, in row order (row ids
    follow it, which ordering keys rely on)."""
    n = len(rows)
    first = 0
    while first < n:
        nulls = tuple([v is None for v in rows[first]])
        end = first + 1
        while end < n and tuple([v is None for v in rows[end]]) == nulls:
            end += 1
        bound = _bound(nulls)
        for start, size in _chunks(end - first):
            chunk = rows[first + start : first + start + size]
            conn.execute(_insert(head, nulls, size), [v for row in chunk for v in bound(row)])
        first = end


@cache
def _delete_claimed(rows: int) -> str:
    return f"DELETE FROM deliveries WHERE id IN ({','.join('?' * rows)}) AND attempt = ?"


def delete_claimed(conn: sqlite3.Connection, ids: Sequence[int], attempts: Sequence[int]) -> None:
    """Delete the deliveries `ids` still at the attempts they were claimed with (`attempts`,
    in the same order): a row claimed again since (a lease that ran out) is another run's.
    Grouped by attempt, one statement per chunk of a group: a commit's acks are nearly all of
    one attempt, which takes no grouping."""
    if min(attempts) == max(attempts):
        _delete_at(conn, ids, attempts[0])
        return
    groups: dict[int, list[int]] = {}
    for id_, attempt in zip(ids, attempts, strict=True):
        groups.setdefault(attempt, []).append(id_)
    for attempt, group in groups.items():
        _delete_at(conn, group, attempt)


def _delete_at(conn: sqlite3.Connection, ids: Sequence[int], attempt: int) -> None:
    for start, size in _chunks(len(ids)):
        conn.execute(_delete_claimed(size), [*ids[start : start + size], attempt])
