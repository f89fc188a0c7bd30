"""Opening a SQLite file written by an earlier version: the columns added since (a retry's
`first_run`, a released retry's `rejoin`) are added by whichever process opens it first, and
processes opening it at the same moment (a server and its workers after an upgrade) must not
trip over each other's additions."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from app.backends.sqlite import SQLiteBackend
from app.settings import Settings
from app.types import Batch, Message, Outcome


async def _earlier_file(db: Path) -> None:
    """A database as the version before `first_run` and `rejoin` left it."""
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    await backend.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX deliveries_step_rejoin")
        conn.execute("ALTER TABLE deliveries DROP COLUMN rejoin")
        conn.execute("ALTER TABLE deliveries DROP COLUMN first_run")


async def test_a_process_adding_the_new_columns_meanwhile_does_not_fail_the_open(tmp_path: Path):
    db = tmp_path / "stepline.db"
    await _earlier_file(db)
    other = sqlite3.connect(db, isolation_level=None)
    # Another process is upgrading the same file: it holds the write lock while it adds one of
    # the columns. Our open must see that column once the lock is free, not add it again
    # ("duplicate column name: first_run").
    other.execute("BEGIN IMMEDIATE")
    backend = SQLiteBackend(Settings(db=db))
    opening = asyncio.ensure_future(backend.open())
    await asyncio.sleep(0.5)
    other.execute("ALTER TABLE deliveries ADD COLUMN first_run REAL")
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(opening, 20)
    try:
        await backend.write(Batch(messages=[Message("topic", {"i": 1}, "t-1", ("A",))]))
        (got,) = await backend.claim({"A": 1}, {"A": 30.0})
        await backend.write(Batch(outcomes=[Outcome(got, "retry", retry_at=0.0)]))
        (again,) = await backend.claim({"A": 1}, {"A": 30.0})
        assert again.first_run == got.first_run  # the added column holds it
    finally:
        await backend.close()
