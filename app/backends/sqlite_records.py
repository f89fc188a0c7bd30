"""Reading what the SQLite backend recorded: spans (app/backends/sqlite_spans.py) and logs,
newest first."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from app.backends.sqlite_spans import read_spans
from app.settings import Settings
from app.types import LogEntry, Span

__all__ = ["SQLiteRecords"]

_loads = json.loads


class SQLiteRecords:
    """Span and log queries; the writes are part of the backend's group commit."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    settings: Settings

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
