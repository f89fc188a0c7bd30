"""Grouped key-value state for the SQLite backend: JSON values, TTL, atomic updates."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from app.backends.base import dump_json

__all__ = ["SQLiteState"]

T = TypeVar("T")
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


class SQLiteState:
    """State methods; the write lock of `BEGIN IMMEDIATE` makes `update` atomic across
    processes, and the single database thread makes it atomic within one."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _tx: Callable[[Callable[[sqlite3.Connection], Any]], Callable[[sqlite3.Connection], Any]]

    async def state_get(self, group: str, key: str) -> tuple[bool, Any]:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT value FROM state WHERE grp = ? AND key = ? AND {_LIVE}",
                (group, key, time.time()),
            ).fetchone()
        )
        return (False, None) if row is None else (True, json.loads(row[0]))

    async def state_set(self, group: str, key: str, value: Any, ttl: float | None) -> None:
        text = dump_json(value, f"state value {group}/{key}")
        expires = None if ttl is None else time.time() + ttl
        await self._run(
            lambda c: c.execute(
                "INSERT INTO state (grp, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (group, key, text, expires),
            )
        )

    async def state_delete(self, group: str, key: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                f"DELETE FROM state WHERE grp = ? AND key = ? AND {_LIVE}",
                (group, key, time.time()),
            )
            return cur.rowcount > 0

        return await self._run(delete)

    async def state_list(self, group: str) -> dict[str, Any]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT key, value FROM state WHERE grp = ? AND {_LIVE} ORDER BY key",
                (group, time.time()),
            ).fetchall()
        )
        return {k: json.loads(v) for k, v in rows}

    async def state_clear(self, group: str) -> int:
        def clear(conn: sqlite3.Connection) -> int:
            live = conn.execute(
                f"SELECT COUNT(*) FROM state WHERE grp = ? AND {_LIVE}", (group, time.time())
            ).fetchone()[0]
            conn.execute("DELETE FROM state WHERE grp = ?", (group,))
            return int(live)

        return await self._run(self._tx(clear))

    async def state_groups(self) -> list[str]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT DISTINCT grp FROM state WHERE {_LIVE} ORDER BY grp", (time.time(),)
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def state_ttl(self, group: str, key: str) -> float | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT expires_at FROM state WHERE grp = ? AND key = ?", (group, key)
            ).fetchone()
        )
        if row is None or row[0] is None:
            return None
        return max(0.0, row[0] - time.time())

    async def state_update(
        self, group: str, key: str, fn: Callable[[Any], Any], default: Any
    ) -> Any:
        def update(conn: sqlite3.Connection) -> Any:
            now = time.time()
            row = conn.execute(
                "SELECT value, expires_at FROM state WHERE grp = ? AND key = ?", (group, key)
            ).fetchone()
            live = row is not None and (row[1] is None or row[1] > now)
            old = json.loads(row[0]) if live else default
            new = fn(old)
            conn.execute(
                "INSERT INTO state (grp, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (
                    group,
                    key,
                    dump_json(new, f"state value {group}/{key}"),
                    row[1] if live else None,
                ),
            )
            return new

        return await self._run(self._tx(update))
