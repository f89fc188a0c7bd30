"""Ordering keys in the SQLite backend (see app/flow.py for what they mean).

A keyed delivery carries its key (`pkey`) and its step's `concurrency_per_key` (`plimit`).
Row ids follow commit order, which is emit order across processes (commits of one file are
serial), so "the first n unsettled rows of a key" is a claim condition: a row is claimable when
fewer than `plimit` rows of its key came before it. A leased, retrying or scheduled row keeps
its place and so holds its key; an acknowledged or dead-lettered one is deleted and frees it.
"""

from __future__ import annotations

import sqlite3

__all__ = ["CLAIMABLE", "add_key_columns"]

CLAIMABLE = (
    "(pkey IS NULL OR (SELECT COUNT(*) FROM deliveries e WHERE e.step = d.step "
    "AND e.pkey = d.pkey AND e.id < d.id) < d.plimit)"
)
"""SQL condition on a `deliveries d` row: its key (if any) lets it run now."""


def add_key_columns(conn: sqlite3.Connection) -> None:
    """Add the key columns to a database created before them (and their index)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
    if "pkey" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN pkey TEXT")
    if "plimit" not in columns:
        conn.execute("ALTER TABLE deliveries ADD COLUMN plimit INTEGER")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_step_key ON deliveries (step, pkey, id) "
        "WHERE pkey IS NOT NULL"
    )
