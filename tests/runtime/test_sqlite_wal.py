"""The SQLite WAL is checkpointed by how much of it is not yet in the database file: often
enough that it stays bounded, rarely enough that the loop's commits do not wait on it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from app.backends.sqlite import SQLiteBackend
from app.backends.sqlite_wal import CHECKPOINT_PAGES, WalCheckpoints
from app.settings import Settings
from app.types import Batch, Message


def _write_many(conn: sqlite3.Connection, n: int, size: int = 3000) -> None:
    for _ in range(n):
        conn.execute("INSERT INTO t VALUES (randomblob(?))", (size,))


def test_the_frame_count_is_sqlites_own(tmp_path: Path):
    db = tmp_path / "x.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")

    class Backend:
        path = db
        _executor = None
        _conn = None
        _inline = conn

    wal = WalCheckpoints(Backend())  # type: ignore[arg-type]
    _write_many(conn, 40)
    frames, _ = wal.frames() or (None, None)
    busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, frames) == (0, log) and log > 40
    assert wal.frames() == (log, done)
    conn.execute("INSERT INTO t VALUES (1)")  # the first write after a full checkpoint rewinds
    assert wal.frames() == (1, 0)
    conn.close()


async def _settled(backend: SQLiteBackend) -> None:
    # The database thread runs one call at a time: an empty call waits out a checkpoint.
    await asyncio.get_running_loop().run_in_executor(backend._executor, lambda: None)


async def test_a_rewound_wal_is_not_checkpointed_after_every_few_commits(tmp_path: Path):
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    try:
        # A burst leaves the WAL file past a checkpoint's worth of pages; once checkpointed it
        # is rewound, but the file keeps its size.
        blob = "x" * 3000
        await backend.write(Batch(messages=[Message("t", blob, "tr", ("A",))] * 3000))
        await _settled(backend)
        with sqlite3.connect(db) as other:
            other.execute("PRAGMA wal_checkpoint(PASSIVE)")
        big = (db.with_name(db.name + "-wal")).stat().st_size
        assert big > CHECKPOINT_PAGES * 4096
        for i in range(40):
            await backend.write(Batch(messages=[Message("t", {"i": i}, "tr", ("A",))]))
            await _settled(backend)
        frames, backfilled = backend._wal.frames() or (0, 0)
        # Forty small commits are far below a checkpoint's worth: they all wait in the WAL.
        assert 40 <= frames < CHECKPOINT_PAGES and backfilled == 0, (frames, backfilled)
    finally:
        await backend.close()


async def test_the_wal_stays_bounded_under_unbroken_writes(tmp_path: Path):
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    try:
        blob = "y" * 3000
        most = written = rewinds = last = 0
        for i in range(6000):
            await backend.write(Batch(messages=[Message("t", {"pad": blob, "i": i}, "tr", ("A",))]))
            if i % 50 == 0:
                await asyncio.sleep(0)  # let a checkpoint's completion be seen
            frames, _ = backend._wal.frames() or (0, 0)
            if frames < last:
                rewinds += 1
                written += frames
            else:
                written += frames - last
            last, most = frames, max(most, frames)
        await _settled(backend)
        # About 6 pages a commit, 37,000 frames written, and the WAL rewound on the way.
        # However late the database thread's checkpoint gets the CPU (where the loop never
        # waits between commits), the writer waits for it once the WAL holds eight
        # checkpoints' worth: 18,060 frames were seen on a loaded machine before it did.
        assert written > 30_000 and rewinds >= 2, (written, rewinds)
        assert most < 8 * CHECKPOINT_PAGES + 100, (most, written)
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 6000
    finally:
        await backend.close()


_TRY_WRITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
try:
    conn.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as exc:
    print(exc)
else:
    print("got the write lock")
"""


def _other_process_writes(db: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _TRY_WRITE, str(db)], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() or out.stderr


async def test_looking_at_the_wal_index_keeps_this_process_sqlite_locks(tmp_path: Path):
    # POSIX locks belong to the process and a close() of any descriptor of the file drops them
    # all: a look that opened and closed the -shm file let another process take the write lock
    # this one held (two writers at once: lost state updates, two runs of one key, and "database
    # disk image is malformed" across three workers).
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    other = SQLiteBackend(Settings(db=db))  # a second backend of this process on the same file
    await backend.open()
    await other.open()
    try:
        await backend.write(Batch(messages=[Message("t", {"i": 1}, "tr", ("A",))]))
        conn = backend._inline
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            assert _other_process_writes(db) == "database is locked"
            for _ in range(8):  # every fourth commit looks at the wal-index
                backend._wal.committed()
            assert backend._wal.frames() is not None
            assert other._wal.frames() is not None
            assert _other_process_writes(db) == "database is locked"
            await other.close()  # its descriptor of the -shm file is the one still in use
            assert _other_process_writes(db) == "database is locked"
        finally:
            conn.rollback()
        assert _other_process_writes(db) == "got the write lock"
    finally:
        await other.close()
        await backend.close()


async def test_a_backend_that_never_looked_keeps_its_locks_when_another_closes(tmp_path: Path):
    # The -shm descriptor is shared by the process's backends on the file and closed with the
    # last of them. One that has not looked at the wal-index yet (fewer than four commits)
    # still holds SQLite's locks on the file: the other's close must not drop them.
    db = tmp_path / "stepline.db"
    looked = SQLiteBackend(Settings(db=db))
    fresh = SQLiteBackend(Settings(db=db))
    await looked.open()
    await fresh.open()
    try:
        await looked.write(Batch(messages=[Message("t", {"i": 1}, "tr", ("A",))]))
        for _ in range(4):  # every fourth commit looks at the wal-index
            looked._wal.committed()
        conn = fresh._inline
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            assert _other_process_writes(db) == "database is locked"
            await looked.close()
            assert _other_process_writes(db) == "database is locked"
        finally:
            conn.rollback()
    finally:
        await looked.close()
        await fresh.close()


async def test_the_writer_waits_for_a_checkpoint_the_database_thread_has_not_run(tmp_path: Path):
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    gate = threading.Event()
    loop = asyncio.get_running_loop()
    # The database thread busy elsewhere, as a starved one is: its checkpoint cannot start.
    busy = loop.run_in_executor(backend._executor, gate.wait)
    blob = "z" * 3000

    async def writes() -> None:
        for i in range(3000):  # about 18,000 frames if nothing held them back
            await backend.write(Batch(messages=[Message("t", {"pad": blob, "i": i}, "tr", ("A",))]))

    task = asyncio.create_task(writes())
    try:
        last, still = -1, 0
        while still < 10 and not task.done():
            await asyncio.sleep(0.05)
            frames, _ = backend._wal.frames() or (0, 0)
            still, last = (still + 1 if frames == last else 0), frames
        assert not task.done(), "the writer never waited for the checkpoint"
        assert 4 * CHECKPOINT_PAGES <= last < 8 * CHECKPOINT_PAGES + 100, last
    finally:
        gate.set()
        await busy
        await asyncio.wait_for(task, 120)
        await _settled(backend)
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 3000
        await backend.close()
