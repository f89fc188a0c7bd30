"""WAL checkpoints of the SQLite backend, off the event loop.

A checkpoint copies the WAL's pages into the database file and syncs it. SQLite runs one inside
the commit that crosses 1,000 pages of WAL, which for the backend is a commit on the event loop's
own connection: 75-150 ms on a busy disk (580 ms seen), a stall for every request and run behind
it. So that connection has auto-checkpoint off, and after every few commits this looks at how
many WAL frames are not yet in the database file and, past `CHECKPOINT_PAGES`, runs a PASSIVE
checkpoint on the database thread's connection: writers on the loop's connection go on
meanwhile. A WAL is rewound only once a checkpoint has caught up with it, which under unbroken
writes the PASSIVE one never does, so a RESTART checkpoint follows it on the thread, copying
the few frames written meanwhile while new writers wait (the loop's commits wait on the thread
for those milliseconds, the loop itself does not). Past four times that size with no checkpoint
running the loop's connection checkpoints itself, as SQLite would have; past eight times while
the thread's checkpoint still runs (starved of CPU on a loaded machine, or kept from finishing
by another process's long read) the writer waits for it before its next commit.
So the file stays bounded whatever the load. (The loop's own checkpoint had run every 2-3 s at
200 webhook requests a second, holding the loop 5-25 ms each time, before the RESTART step.)

The count comes from the wal-index (the `-shm` file, whose header SQLite documents in "WAL-mode
File Format": `mxFrame` at byte 16, `nBackfill` at byte 96, native byte order), read with one
`pread`. Not from the WAL file's size: the file keeps its peak size after a rewind, so once it
had reached 1,000 pages every fourth commit started a checkpoint (150 a second at 200 webhook
requests a second), each one syncing the file and taking the GIL from the loop: the slow 5 % of
the loop's commits (2-7 ms instead of 0.1 ms) and most of the webhook's p99.

SQLite's locks between processes are POSIX locks on that file, and they belong to the process: a
close() of any descriptor of it drops every one the process holds, SQLite's included (SQLite
shares its own descriptors to avoid this; ours is outside). A look that opened and closed the
file each time let another process take the write lock this one held: two writers at once, lost
updates, two runs of one ordering key, "database disk image is malformed". So the descriptor
stays open while any backend of the process has the file open, and is closed after the last
one's connections are (`_Shm`). Every backend counts from its open, not from its first look: one
that had not looked yet (fewer than four commits) held SQLite's locks all the same, and lost them
when the only backend counted closed the descriptor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
from concurrent.futures import Executor
from pathlib import Path
from typing import ClassVar, Protocol

__all__ = ["CHECKPOINT_PAGES", "WalCheckpoints"]

log = logging.getLogger("stepline.sqlite")

CHECKPOINT_PAGES = 1000
"""SQLite's own auto-checkpoint point, in WAL frames (one page each). 2,000 halved the
checkpoints that slow a webhook request beside them (probe, 19:48-19:51 UTC: client p99 13.3
-> 9.7 ms at 200 req/s, one noisy run) but left `bench/chain.py --long 100000`'s database at
28.2 MiB with its WAL against 18.3 MiB, past the 20 MB it must stay under."""

# Frames, in checkpoints' worth, past which the writer waits for the thread's checkpoint. At
# four it waited often enough in `bench/chain.py --long 100000` to cost 0.93x and 0.83x the
# 10,000-chain rate against 0.97x and 0.99x without the wait (interleaved, 21:09 UTC).
_HOLD = 8
_EVERY = 4  # commits between two looks at the wal-index (open, pread, close: ~3 µs)
_VERSION = 3007000  # the wal-index header's iVersion
_HEADER = 100  # bytes up to and including nBackfill
_RESTART_WAIT_MS = 100  # longest the RESTART step waits for other connections' reads


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


class _Shm:
    """This process's one read-only descriptor of each -shm file (by device and inode, so two
    spellings of one path share it), shared by the backends that have it open: closed when the
    last of them closes, never while one still uses the file (see the module's docstring)."""

    _open: ClassVar[dict[tuple[int, int], list[int]]] = {}  # file: [descriptor, users]

    @classmethod
    def take(cls, path: Path) -> tuple[tuple[int, int], int] | None:
        try:
            st = os.stat(path)
            file = (st.st_dev, st.st_ino)
            held = cls._open.get(file)
            if held is None:
                held = cls._open[file] = [os.open(path, os.O_RDONLY), 0]
        except OSError:
            return None
        held[1] += 1
        return file, held[0]

    @classmethod
    def give_back(cls, file: tuple[int, int]) -> None:
        held = cls._open.get(file)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del cls._open[file]
            os.close(held[0])


class WalCheckpoints:
    """Checkpoints one database's WAL on its database thread, one at a time."""

    def __init__(self, backend: _Backend) -> None:
        self._wal = backend.path.with_name(backend.path.name + "-wal")
        self._shm = backend.path.with_name(backend.path.name + "-shm")
        self._backend = backend
        self._commits = 0
        self._running: asyncio.Future[None] | None = None
        self._held: tuple[tuple[int, int], int] | None = None  # from _Shm at the first look

    def open(self) -> None:
        """The backend's connections are open: count it as a user of the -shm descriptor, so
        that another backend's close cannot drop the locks its connections hold."""
        if self._held is None:
            self._held = _Shm.take(self._shm)

    def frames(self) -> tuple[int, int] | None:
        """(frames in the WAL, frames of them already in the database file), or None when
        the wal-index cannot be read (no WAL yet, or a layout this does not know)."""
        held = self._held
        if held is None:
            held = self._held = _Shm.take(self._shm)
            if held is None:
                return None
        try:
            head = os.pread(held[1], _HEADER, 0)
        except OSError:
            return None
        order = sys.byteorder
        if len(head) < _HEADER or int.from_bytes(head[:4], order) != _VERSION:
            return None
        return int.from_bytes(head[16:20], order), int.from_bytes(head[96:100], order)

    def close(self) -> None:
        """The backend's connections are closed: give the descriptor back (closed once no
        other backend of this process uses the file)."""
        if self._held is not None:
            file, self._held = self._held[0], None
            _Shm.give_back(file)

    def _pending(self) -> tuple[int, int] | None:
        """(frames in the WAL, frames not yet checkpointed); from the file's size when the
        wal-index cannot be read, which over-counts after a rewind but stays bounded."""
        found = self.frames()
        if found is not None:
            return found[0], found[0] - found[1]
        try:
            pages = self._wal.stat().st_size // 4096
        except OSError:
            return None
        return pages, pages

    def committed(self) -> asyncio.Future[None] | None:
        """A commit went through on the loop's connection. Returns the checkpoint running on
        the database thread when the WAL is past its bound: the caller waits for it (see
        `wait_for`) before it commits again."""
        self._commits += 1
        if self._commits % _EVERY:
            return None
        found = self._pending()
        if found is None:
            return None
        frames, pending = found
        if frames >= 4 * CHECKPOINT_PAGES:
            if self._running is not None:
                if frames >= _HOLD * CHECKPOINT_PAGES:
                    # The thread's checkpoint is starved of CPU or held up by a long read
                    # while the loop writes on: writing more would grow the WAL without
                    # bound (18,060 frames seen on a loaded machine), so the writer waits.
                    return self._running
            elif (conn := self._backend._inline) is not None:
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint of %s failed: %s", self._wal, exc)
        elif pending >= CHECKPOINT_PAGES and self._running is None and self._backend._conn:
            loop = asyncio.get_running_loop()
            self._running = loop.run_in_executor(self._backend._executor, self._checkpoint)
            self._running.add_done_callback(self._done)
        return None

    @staticmethod
    async def wait_for(running: asyncio.Future[None] | None) -> None:
        """Wait for a checkpoint `committed` returned; its failure is logged by `_done`, and
        the waiter being cancelled leaves it running."""
        if running is not None:
            await asyncio.wait([running])

    def _checkpoint(self) -> None:
        conn = self._backend._conn  # on the database thread: its own connection
        if conn is None:
            return
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        # The loop's commits went on meanwhile, so the WAL is not all copied and cannot be
        # rewound. RESTART copies the few frames they added while holding new writers back
        # (the loop's commits wait on this thread meanwhile, the loop does not), and the next
        # commit rewinds the WAL. Waiting on another process's long read is cut short: the
        # next checkpoint tries again, and the loop's own one bounds the file.
        busy = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute(f"PRAGMA busy_timeout={_RESTART_WAIT_MS}")
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)")
        finally:
            conn.execute(f"PRAGMA busy_timeout={busy}")

    def _done(self, done: asyncio.Future[None]) -> None:
        self._running = None
        if not done.cancelled() and (exc := done.exception()) is not None:
            # The next look retries; until then the WAL only grows.
            log.warning("WAL checkpoint of %s failed: %s", self._wal, exc)
