"""WAL checkpoints of the SQLite backend, off the event loop.

A checkpoint copies the WAL's pages into the database file and syncs it. SQLite runs one inside
the commit that crosses 1,000 pages of WAL, which for the backend is a commit on the event loop's
own connection: 75-150 ms on a busy disk (580 ms seen), a stall for every request and run behind
it. So that connection has auto-checkpoint off, and after every few commits this checks the
WAL's size and, past the same 1,000 pages, runs a PASSIVE checkpoint on the database thread's
connection: writers on the loop's connection go on meanwhile, and the WAL stays about as small
as SQLite would keep it. A WAL is rewound only once a checkpoint has caught up with it, which
under unbroken writes may not happen in time: past four times that size the loop's connection
checkpoints itself, as SQLite would have, so the file stays bounded whatever the load.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

__all__ = ["CHECKPOINT_BYTES", "WalCheckpoints"]

log = logging.getLogger("stepline.sqlite")

CHECKPOINT_BYTES = 1000 * 4096
"""SQLite's own auto-checkpoint point: 1,000 pages of the default 4 KiB."""

_EVERY = 4  # commits between two looks at the WAL's size (a stat call, ~2 µs)


class _Backend(Protocol):
    """What this reads of the SQLite backend: `_conn` is the database thread's connection,
    `_inline` the event loop's."""

    @property
    def path(self) -> Path: ...
    @property
    def _executor(self) -> Executor: ...
    @property
    def _conn(self) -> sqlite3.Connection | None: ...
    @property
    def _inline(self) -> sqlite3.Connection | None: ...


class WalCheckpoints:
    """Checkpoints one database's WAL on its database thread, one at a time."""

    def __init__(self, backend: _Backend) -> None:
        self._wal = backend.path.with_name(backend.path.name + "-wal")
        self._backend = backend
        self._commits = 0
        self._running: asyncio.Future[None] | None = None

    def committed(self) -> None:
        """A commit went through on the loop's connection."""
        self._commits += 1
        if self._commits % _EVERY:
            return
        try:
            size = self._wal.stat().st_size
        except OSError:
            return
        if size >= 4 * CHECKPOINT_BYTES and (conn := self._backend._inline) is not None:
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint of %s failed: %s", self._wal, exc)
        elif size >= CHECKPOINT_BYTES and self._running is None and self._backend._conn:
            loop = asyncio.get_running_loop()
            self._running = loop.run_in_executor(self._backend._executor, self._checkpoint)
            self._running.add_done_callback(self._done)

    def _checkpoint(self) -> None:
        conn = self._backend._conn  # on the database thread: its own connection
        if conn is not None:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _done(self, done: asyncio.Future[None]) -> None:
        self._running = None
        if not done.cancelled() and (exc := done.exception()) is not None:
            # The next look retries; until then the WAL only grows.
            log.warning("WAL checkpoint of %s failed: %s", self._wal, exc)
