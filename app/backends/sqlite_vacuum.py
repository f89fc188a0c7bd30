"""Giving a SQLite file created before incremental auto-vacuum the means to shrink.

SQLite fixes a file's auto-vacuum mode when its first table is created: a database created
before Stepline set `auto_vacuum=INCREMENTAL` stays in mode NONE. Its tables are still trimmed
to their limits and freed pages are reused, so it stays bounded, but the file never gets
smaller after a burst (sqlite_retention's sweep can only release pages in INCREMENTAL mode).
The one conversion SQLite offers is `PRAGMA auto_vacuum=INCREMENTAL` followed by `VACUUM`,
which rewrites the whole file.

`VACUUM` in WAL mode does not wait for other processes' readers, but it holds the write lock
for the whole rewrite (seconds for tens of MiB): another Stepline process's writes would wait
on it and then fail after their 15 s busy timeout. So `convert` runs only while no other
connection has the file open: it takes an exclusive lock first (SQLite refuses that while any
other connection, even an idle one, holds the file) and keeps it until the rewrite is done, so
no process can start using the file half way. It is not done at start-up, which would delay
every start of a large file and could not tell an operator why; the start-up logs a warning
naming `stepline db vacuum` instead (`never_shrinks_warning`), from a process that serves only
(`NeverShrinksWarning.serving`): a one-shot command (`stepline steps`, `dlq list`, `emit`)
opens the file too, and a warning on every read would only be noise.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.errors import BackendError

__all__ = ["DatabaseInUse", "NeverShrinksWarning", "Vacuumed", "convert", "never_shrinks_warning"]

log = logging.getLogger("stepline.sqlite")

_NONE, _INCREMENTAL = 0, 2  # PRAGMA auto_vacuum values (1 is FULL: shrinks at every commit)


class DatabaseInUse(BackendError):
    """Another process has the database open, so it cannot be rewritten now."""


@dataclass(frozen=True, slots=True)
class Vacuumed:
    """What `convert` did: `converted` False when the file could shrink already."""

    converted: bool
    bytes_before: int
    bytes_after: int


def _file_bytes(path: Path) -> int:
    """The database with its -wal file: what the file system gives it."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def never_shrinks_warning(conn: sqlite3.Connection, path: Path) -> str | None:
    """The start-up warning for a file in auto-vacuum mode NONE, else None."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _NONE:
        return None
    size = _file_bytes(path) / 2**20
    return (
        f"SQLite database {path} ({size:.1f} MiB) was created before incremental auto-vacuum: "
        "it stays within its limits but never gives free space back to the disk; run "
        "`stepline db vacuum` once with Stepline stopped to convert it"
    )


class NeverShrinksWarning:
    """SQLiteBackend's `serving()`: the warning that `open()` found (`never_shrinks`), once,
    from the process that serves, unless it is a worker of a pool (`start --workers N`), whose
    HTTP process gives it, as the Redis backend does with its appendonly warning."""

    never_shrinks: str | None = None

    def serving(self) -> None:
        from app.worker import PARENT_ENV  # not at import: app.worker imports the runtime

        note, self.never_shrinks = self.never_shrinks, None
        if note is not None and not os.environ.get(PARENT_ENV):
            log.warning("%s", note)


def convert(path: Path) -> Vacuumed:
    """Rewrite `path` in incremental auto-vacuum mode, unless it is in it (or FULL) already.

    Raises `DatabaseInUse` when another connection has the file open, `FileNotFoundError`
    when there is no file, `BackendError` when SQLite refuses (not a database, disk full).
    """
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no database file", str(path))
    before = _file_bytes(path)
    # timeout=0: a lock held by another process is an answer, not something to wait for.
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _NONE:
            return Vacuumed(False, before, before)
        # In WAL mode, EXCLUSIVE locking makes the first transaction take the file itself (no
        # shared memory index): it fails while any other connection has the file open, and the
        # lock is then held until this connection closes.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            raise DatabaseInUse(
                f"{path} is open in another process (a running `stepline start`, `dev` or "
                "`worker`, or a `stepline` command): stop them, then run `stepline db vacuum` "
                "again; SQLite can only rewrite a file no other process has open"
            ) from None
        conn.execute(f"PRAGMA auto_vacuum={_INCREMENTAL}")
        conn.execute("VACUUM")
        # VACUUM in WAL mode writes the new file into the WAL: fold it back and truncate it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
            raise BackendError(f"SQLite did not convert {path} (auto_vacuum is still NONE)")
    except sqlite3.DatabaseError as exc:
        raise BackendError(f"cannot vacuum SQLite database {path}: {exc}") from exc
    finally:
        conn.close()
    return Vacuumed(True, before, _file_bytes(path))
