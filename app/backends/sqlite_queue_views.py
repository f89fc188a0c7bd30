"""What the SQLite backend's queue holds, for the Workbench, the CLI and `/readyz`: counts
per step, the deliveries waiting (oldest first, and the scheduled ones soonest first) and the
dead letters. Read-only; the writes are the backend's."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from app.backends.base import QueueStats
from app.types import DeadLetter

__all__ = ["SQLiteQueueViews"]

_loads = json.loads
_COLUMNS = "id, step, topic, data, trace_id, attempt, due, created_at"


def _row(r: tuple[Any, ...], status: str) -> dict[str, Any]:
    """A delivery row (the columns of `_COLUMNS` first) as the queue views show it."""
    return {
        "id": str(r[0]),
        "step": r[1],
        "topic": r[2],
        "data": _loads(r[3]),
        "trace_id": r[4],
        "attempt": r[5],
        "due": r[6],
        "created_at": r[7],
        "status": status,
    }


class SQLiteQueueViews:
    """Queue inspection methods of SQLiteBackend."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    clock: Callable[[], float]

    async def pending(self, step: str | None = None) -> int:
        if step is None:
            return await self._run(
                lambda c: c.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
            )
        return await self._run(
            lambda c: c.execute(
                "SELECT COUNT(*) FROM deliveries WHERE step = ?", (step,)
            ).fetchone()[0]
        )

    async def queue_stats(self) -> QueueStats:
        def stats(conn: sqlite3.Connection) -> QueueStats:
            now = self.clock()
            out: QueueStats = {}
            for step, leased, due_now, n in conn.execute(
                "SELECT step, leased, due <= ?, COUNT(*) FROM deliveries GROUP BY 1, 2, 3",
                (now,),
            ):
                row = out.setdefault(step, {"queued": 0, "scheduled": 0, "in_flight": 0, "dead": 0})
                if leased and not due_now:
                    row["in_flight"] += n
                elif due_now:
                    row["queued"] += n
                else:
                    row["scheduled"] += n
            for step, n in conn.execute("SELECT step, COUNT(*) FROM dead_letters GROUP BY 1"):
                out.setdefault(step, {"queued": 0, "scheduled": 0, "in_flight": 0, "dead": 0})[
                    "dead"
                ] = n
            return out

        return await self._run(stats)

    async def queued(self, limit: int = 100) -> list[dict[str, Any]]:
        def rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = self.clock()
            cur = conn.execute(
                f"SELECT {_COLUMNS}, leased FROM deliveries ORDER BY id LIMIT ?", (limit,)
            )
            return [
                _row(
                    r,
                    "in_flight"
                    if r[8] and r[6] > now
                    else ("queued" if r[6] <= now else "scheduled"),
                )
                for r in cur
            ]

        return await self._run(rows)

    async def scheduled(self, limit: int = 100, step: str | None = None) -> list[dict[str, Any]]:
        def rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = self.clock()
            steps = (
                [step]
                if step is not None
                else [r[0] for r in conn.execute("SELECT DISTINCT step FROM deliveries")]
            )
            found: list[dict[str, Any]] = []
            for name in steps:
                # One step at a time on the (step, due) index: soonest first, however many
                # older deliveries wait ahead of them by id.
                cur = conn.execute(
                    f"SELECT {_COLUMNS} FROM deliveries WHERE step = ? AND due > ? "
                    "AND NOT leased ORDER BY due LIMIT ?",
                    (name, now, limit),
                )
                found.extend(_row(r, "scheduled") for r in cur)
            found.sort(key=lambda r: (r["due"], int(r["id"])))
            return found[:limit]

        return await self._run(rows)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        def rows(conn: sqlite3.Connection) -> list[DeadLetter]:
            cur = conn.execute(
                "SELECT id, step, topic, data, trace_id, attempts, error, traceback, failed_at "
                "FROM dead_letters ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            return [DeadLetter(str(r[0]), r[1], r[2], _loads(r[3]), *r[4:]) for r in cur]

        return await self._run(rows)
