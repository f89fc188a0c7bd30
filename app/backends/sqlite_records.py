"""Reading what the SQLite backend recorded: spans (app/backends/sqlite_spans.py) and logs,
newest first; and the write probe of `/readyz`."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from app.backends.sqlite_spans import read_spans
from app.errors import BackendUnavailable
from app.settings import Settings
from app.types import LogEntry, Span

__all__ = ["SQLiteRecords"]

_loads = json.loads
_PROBE = "INSERT OR REPLACE INTO write_probe (id, at) VALUES (1, ?)"
_ROOM = 16 << 20  # four times the WAL's size limit (journal_size_limit)
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class SQLiteRecords:
    """Span and log queries; the writes are part of the backend's group commit."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    settings: Settings
    _tx: Callable[[Callable[[sqlite3.Connection], Any]], Callable[[sqlite3.Connection], Any]]
    storage_error: str | None
    path: Path
    _executor: ThreadPoolExecutor
    _conn: sqlite3.Connection | None
    _inline: sqlite3.Connection | None
    _connect: Callable[..., sqlite3.Connection]
    storage_code: int | None = None
    """The SQLite error code behind `storage_error`."""

    async def probe_write(self) -> None:
        """Rewrite the one row of `write_probe`: a commit like any other (a full disk or a
        read-only file refuses it), which touches no data. A corrupt page is not where the
        probe writes, so corruption is left for a real commit to clear."""
        code = (self.storage_code or 0) & 0xFF  # the primary code of an extended one
        if code in _CORRUPT:
            raise BackendUnavailable(self.storage_error or "the database is corrupt")
        if code == sqlite3.SQLITE_FULL:
            # A failed commit leaves WAL space behind that one small row fits in: only room
            # on the disk says a commit of real size would go through.
            free = shutil.disk_usage(self.path.parent).free
            if free < _ROOM:
                raise BackendUnavailable(f"{self.storage_error} ({free} bytes free)")
        if code == sqlite3.SQLITE_READONLY:
            await self._reconnect()
        row = (time.time(),)
        await self._run(self._tx(lambda c: c.execute(_PROBE, row)))
        self.storage_error = None

    async def _reconnect(self) -> None:
        """New connections: one that found the file read-only stays read-only after the file
        (or its filesystem) is writable again. The old ones are dropped, not closed, so a call
        already handed one fails as read-only rather than on a closed connection."""

        def fresh() -> None:
            self._conn = self._connect(15_000)

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, fresh)
            self._inline = self._connect(0)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"{self.storage_error} (reopening: {exc})") from exc

    # -- traces and logs ---------------------------------------------------------------------
    async def spans(
        self,
        *,
        trace_id: str | None = None,
        step: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Span]:
        keep = self.settings.trace_retention
        return await self._run(
            lambda c: read_spans(c, keep, trace_id=trace_id, step=step, status=status, limit=limit)
        )

    async def logs(
        self, *, trace_id: str | None = None, step: str | None = None, limit: int = 200
    ) -> list[LogEntry]:
        clauses, args = _filters(trace_id=trace_id, step=step)

        def rows(conn: sqlite3.Connection) -> list[LogEntry]:
            cur = conn.execute(
                "SELECT level, message, step, trace_id, span_id, fields, ts FROM logs "
                f"{clauses} ORDER BY seq DESC LIMIT ?",
                (*args, limit),
            )
            return [LogEntry(r[0], r[1], r[2], r[3], r[4], _loads(r[5]), r[6]) for r in cur]

        return await self._run(rows)


def _filters(**values: str | None) -> tuple[str, tuple[str, ...]]:
    used = {k: v for k, v in values.items() if v}
    if not used:
        return "", ()
    return "WHERE " + " AND ".join(f"{k} = ?" for k in used), tuple(used.values())
