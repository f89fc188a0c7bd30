"""Grouped key-value state on Redis: one string key per entry so each can carry its own TTL.

A sorted set per group indexes its keys (score: expiry in ms, `inf` when none), which makes
`list`, `clear` and `groups` cheap without SCAN. The index can briefly name an expired key;
readers check the key itself, so only live keys are ever returned.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from redis import exceptions as rx

from app.backends.base import dump_json
from app.backends.redis_conn import guarded

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

__all__ = ["RedisState"]


class RedisState:
    """State methods of RedisBackend; `update` is a WATCH/MULTI loop, `increment` one script."""

    prefix: str
    where: str

    @property
    def _r(self) -> aioredis.Redis:  # the open client, provided by RedisBackend
        raise NotImplementedError

    _scripts: dict[str, AsyncScript]

    def _skey(self, group: str, key: str) -> str:
        # The length makes "a:b"/"c" and "a"/"b:c" different keys.
        return f"{self.prefix}:st:{len(group)}:{group}:{key}"

    def _sindex(self, group: str) -> str:
        return f"{self.prefix}:sk:{len(group)}:{group}"

    @guarded
    async def state_get(self, group: str, key: str) -> tuple[bool, Any]:
        raw = await self._r.get(self._skey(group, key))
        return (False, None) if raw is None else (True, json.loads(raw))

    @guarded
    async def state_set(self, group: str, key: str, value: Any, ttl: float | None) -> None:
        text = dump_json(value, f"state value {group}/{key}")
        async with self._r.pipeline(transaction=True) as pipe:
            if ttl is None:
                pipe.set(self._skey(group, key), text)
                pipe.zadd(self._sindex(group), {key: math.inf})
            else:
                ms = max(1, int(ttl * 1000))
                pipe.set(self._skey(group, key), text, px=ms)
                pipe.zadd(self._sindex(group), {key: time.time() * 1000 + ms})
            pipe.sadd(f"{self.prefix}:sgroups", group)
            await pipe.execute()

    @guarded
    async def state_delete(self, group: str, key: str) -> bool:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._skey(group, key))
            pipe.zrem(self._sindex(group), key)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    @guarded
    async def state_list(self, group: str) -> dict[str, Any]:
        names = cast(
            list[str], await self._r.zrangebyscore(self._sindex(group), time.time() * 1000, "+inf")
        )
        if not names:
            return {}
        values = await self._r.mget([self._skey(group, k) for k in names])
        return {k: json.loads(v) for k, v in sorted(zip(names, values, strict=True)) if v}

    @guarded
    async def state_clear(self, group: str) -> int:
        prefix = self._skey(group, "")
        args = [self.prefix, self._sindex(group), group, prefix]
        return int(await self._scripts["clear"](args=args))

    @guarded
    async def state_groups(self) -> list[str]:
        groups = sorted(cast(set[str], await self._r.smembers(f"{self.prefix}:sgroups")))
        now = time.time() * 1000
        async with self._r.pipeline(transaction=False) as pipe:
            for g in groups:
                pipe.zcount(self._sindex(g), now, "+inf")
            counts = await pipe.execute()
        return [g for g, n in zip(groups, counts, strict=True) if n]

    @guarded
    async def state_ttl(self, group: str, key: str) -> float | None:
        ms = await self._r.pttl(self._skey(group, key))
        return None if ms < 0 else ms / 1000

    @guarded
    async def state_update(
        self, group: str, key: str, fn: Callable[[Any], Any], default: Any
    ) -> Any:
        skey = self._skey(group, key)
        conflicts = 0
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(skey)
                    raw = await pipe.get(skey)
                    new = fn(default if raw is None else json.loads(raw))
                    pipe.multi()
                    if raw is None:
                        pipe.set(skey, dump_json(new, f"state value {group}/{key}"))
                        pipe.zadd(self._sindex(group), {key: math.inf})
                        pipe.sadd(f"{self.prefix}:sgroups", group)
                    else:
                        # An existing key keeps its expiry, as on SQLite.
                        pipe.set(skey, dump_json(new, f"state value {group}/{key}"), keepttl=True)
                    await pipe.execute()
                    return new
                except rx.WatchError:
                    conflicts += 1
                    if conflicts > 3:
                        # Many writers on one key: spread the retries out instead of
                        # colliding again at once.
                        await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * conflicts)))

    @guarded
    async def state_increment(self, group: str, key: str, by: int | float) -> int | float:
        args = [
            self.prefix,
            self._skey(group, key),
            self._sindex(group),
            group,
            key,
            repr(by),
            "1" if isinstance(by, float) else "0",
        ]
        try:
            text = await self._scripts["increment"](args=args)
        except rx.ResponseError as exc:
            if "STEPLINE_NAN" in str(exc):
                raise TypeError(
                    f"state {group!r}/{key!r} holds a value that is not a number; "
                    "increment needs a number (or a missing key, which starts at 0)"
                ) from None
            raise
        return json.loads(text)
