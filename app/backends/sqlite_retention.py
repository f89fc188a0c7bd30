"""Keeping the SQLite file bounded under continuous load.

Spans and logs are trimmed to their caps inside the same write transaction that added rows,
so the tables never hold more than the cap between two sweeps (a 60 s sweep held about a minute
of spans at full load: 300k rows, 56 MB). The trim is a rowid-range delete of about as many rows
as the commit inserted: for logs a row each, for spans one row per commit (app/backends/
sqlite_spans.py numbers span rows by span, so the cap still counts spans).

Freed pages are reused by later inserts, so a bounded table keeps the file bounded. To give
space back after a burst (a deep backlog of deliveries, say), a new database is created with
`auto_vacuum=INCREMENTAL` and the periodic sweep releases free pages a small step at a time.
SQLite only honours that mode for a file created with it: an existing database keeps
`auto_vacuum=NONE` (still bounded, never shrinking) until `stepline db vacuum` converts it
with the backend stopped (app/backends/sqlite_vacuum.py; README, "Durable events", Retention).
"""

from __future__ import annotations

import sqlite3

__all__ = ["RECORD_TABLES", "VACUUM_STEP_PAGES", "release_free_pages", "trim"]

RECORD_TABLES = ("span_rows", "logs")

# Pages released per transaction: 1 MiB at the default 4 KiB page size, a few milliseconds of
# write lock, so a sweep never stalls the writer of another process for long.
VACUUM_STEP_PAGES = 256
# Free pages kept for reuse: a bounded table churns through about this many between sweeps, and
# giving them back only for the file to grow again would be wasted I/O.
_KEEP_FREE_PAGES = 1024


def trim(conn: sqlite3.Connection, table: str, keep: int) -> None:
    """Delete the oldest rows of `table` (a `seq`-keyed record table) beyond the newest `keep`:
    for `span_rows`, whose `seq` numbers spans, the rows whose spans are all past `keep`."""
    if table not in RECORD_TABLES:  # the name is interpolated: only our own tables
        raise ValueError(f"trim: {table!r} is not one of {RECORD_TABLES}")
    conn.execute(f"DELETE FROM {table} WHERE seq <= (SELECT MAX(seq) FROM {table}) - ?", (keep,))


def release_free_pages(conn: sqlite3.Connection) -> int:
    """Give one step of free pages back to the file system; the number of pages released.

    Runs in its own transaction (the caller's `BEGIN IMMEDIATE`); returns 0 when the file is not
    in incremental auto-vacuum mode or keeps few free pages, so the caller stops looping.
    """
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2 = INCREMENTAL
        return 0
    spare = conn.execute("PRAGMA freelist_count").fetchone()[0] - _KEEP_FREE_PAGES
    if spare <= 0:
        return 0
    step = min(spare, VACUUM_STEP_PAGES)
    # Python's sqlite3 steps a pragma once and SQLite releases one page per step, so
    # `incremental_vacuum(N)` through it would free a single page: one page per statement.
    for _ in range(step):
        conn.execute("PRAGMA incremental_vacuum(1)")
    return step
