"""The scale-out backend: every Stepline process of an app shares one Redis.

Deliveries live in Redis Streams, one stream and consumer group per subscribing step, so any
process can claim work and a dead process's leased work is taken over (XPENDING IDLE + XCLAIM)
once its lease runs out. Every write the engine batches - emits, acknowledgements, retries,
dead letters, spans and logs - is one Lua script, which Redis runs atomically: a handler's emits
are visible exactly when its acknowledgement is. The key layout is described in redis_lua.py.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis import exceptions as rx

from app.backends import redis_lua as lua
from app.backends import redis_lua_batch as hot
from app.backends.base import Backend, valid_ids
from app.backends.redis_batch import claim_args, deliveries, message_args, write_args
from app.backends.redis_conn import check_config, connect, guarded, redacted, unavailable
from app.backends.redis_pubsub import Fanout
from app.backends.redis_records import RedisRecords
from app.backends.redis_state import RedisState
from app.settings import Settings
from app.types import Batch, Delivery, Message

__all__ = ["RedisBackend"]

log = logging.getLogger("stepline.redis")


class RedisBackend(RedisState, RedisRecords, Backend):
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.prefix = settings.redis_prefix
        self.where = redacted(settings.redis_url)
        # Each backend object is its own consumer, so a restarted process never inherits
        # a dead one's pending list: those entries are reclaimed through their leases.
        self.consumer = uuid.uuid4().hex
        self._client: Any = None
        self._fanout: Fanout | None = None
        self._reclaimed_at: dict[str, float] = {}
        self._durability: str | None = None  # the appendonly warning, until it is given

    @property
    def _r(self) -> Any:
        if self._client is None:
            raise unavailable(self.where, RuntimeError("the backend is not open"))
        return self._client

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        client = connect(self.settings.redis_url, max(64, self.settings.concurrency + 32))
        try:
            await client.ping()
            self._durability = await check_config(client, self.where, self.settings)
            # A prefix that begins with this version has no earlier version's per-key rate
            # claims to look for (redis_rates.py).
            per_key = any(limit[2] for limit in self.rate_limits.values())
            if per_key and not await client.exists(f"{self.prefix}:seq"):
                await client.set(f"{self.prefix}:rkv", 0, nx=True)
        except (rx.RedisError, OSError) as exc:
            await client.aclose()
            raise unavailable(self.where, exc) from exc
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._scripts = {
            name.lower(): client.register_script(getattr(module, name))
            for module in (lua, hot)
            for name in module.__all__
            if name != "PRELUDE"
        }
        self._fanout = Fanout(client, self.prefix, self.where, self._deliver_local)

    def serving(self) -> None:
        """The appendonly warning, once, from the process that serves, unless it is a worker
        of a pool (`start --workers N`), whose HTTP process gives it. One-shot commands
        (`stepline emit`, `state get`, `steps`) only open the backend: they stay quiet."""
        from app.worker import PARENT_ENV  # not at import: app.worker imports the runtime

        note, self._durability = self._durability, None
        if note is not None and not os.environ.get(PARENT_ENV):
            log.warning("%s", note)

    async def close(self) -> None:
        if self._client is None:
            return
        if self._fanout is not None:
            await self._fanout.close()
        client, self._client = self._client, None
        await client.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self._r.ping())
        except Exception:
            return False

    # -- queue -------------------------------------------------------------------------------
    @guarded
    async def write(self, batch: Batch) -> None:
        if not batch:
            return
        await self._scripts["write"](
            args=[self.prefix, *write_args(batch, self.settings, self.clock(), self.ordered)]
        )
        self.storage_error = None  # only a real write proves Redis takes writes

    @guarded
    async def probe_write(self) -> None:
        # A SET is refused like any write when Redis is out of memory, read-only or cannot
        # persist (MISCONF); the key holds only the time of the last probe, and expires so a
        # prefix no longer in use is not left holding it.
        await self._r.set(f"{self.prefix}:probe", str(time.time()), ex=86400)
        self.storage_error = None

    @guarded
    async def claim(self, wants: Mapping[str, int], lease: Mapping[str, float]) -> list[Delivery]:
        wants = {s: n for s, n in wants.items() if n > 0}
        if not wants:
            return []
        now = self.clock()
        args = [self.prefix, *self._claim_args(wants, lease, now)]
        return deliveries(await self._scripts["claim"](args=args), now)

    @guarded
    async def write_and_claim(
        self, batch: Batch, wants: Mapping[str, int], lease: Mapping[str, float]
    ) -> list[Delivery]:
        """One round trip: the commit, then a claim of the steps it fed."""
        wants = {s: n for s, n in wants.items() if n > 0}
        if not batch:
            return await self.claim(wants, lease)
        if not wants:
            await self.write(batch)
            return []
        now = self.clock()
        args = [
            self.prefix,
            *write_args(batch, self.settings, now, self.ordered),
            *self._claim_args(wants, lease, now),
        ]
        rows = await self._scripts["write_claim"](args=args)
        self.storage_error = None
        if rows and rows[0] == "":
            # The commit stands; what the claim leased comes back when the lease ends.
            log.warning("claim after a commit failed (the commit stands): %s", rows[1])
            return []
        return deliveries(rows, now)

    def _claim_args(
        self, wants: Mapping[str, int], lease: Mapping[str, float], now: float | None = None
    ) -> list[Any]:
        now = self.clock() if now is None else now
        plan: dict[str, tuple[int, bool, int, float, bool]] = {}
        for step in wants:
            seconds = lease.get(step, self.settings.lease_seconds)
            # Scanning for expired leases costs a walk of the pending list; a quarter of the
            # lease between scans keeps takeover prompt without paying it on every poll.
            reclaim = now - self._reclaimed_at.get(step, 0.0) >= min(seconds / 4, 1.0)
            if reclaim:
                self._reclaimed_at[step] = now
            rate, window, per_key = self.rate_limits.get(step, (0, 0.0, False))
            plan[step] = (max(1, int(seconds * 1000)), reclaim, rate, window, per_key)
        return claim_args(self.consumer, now, wants, plan)

    @guarded
    async def release(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        args: list[Any] = [self.prefix, len(deliveries)]
        for d in deliveries:
            args += [d.step, d.id, d.attempt]
        await self._scripts["release"](args=args)

    @guarded
    async def replay(self, ids: list[str] | None = None) -> int:
        if ids is not None and not valid_ids(ids):
            return 0
        args = [self.prefix, "1" if ids is None else "0", *(ids or [])]
        return int(await self._scripts["replay"](args=args))

    # -- cron --------------------------------------------------------------------------------
    @guarded
    async def try_fire(self, step: str, tick: float, message: Message) -> bool:
        args = [
            self.prefix,
            step,
            repr(float(tick)),
            int(self.settings.dedup_ttl * 1000),
            *message_args(message, self.clock()),
        ]
        return bool(await self._scripts["fire"](args=args))

    @guarded
    async def last_fire(self, step: str) -> float | None:
        raw = await self._r.get(f"{self.prefix}:cron:{step}")
        return None if raw is None else float(raw)

    # -- retention ---------------------------------------------------------------------------
    @guarded
    async def prune(self) -> None:
        # Spans, logs and dead letters are trimmed as they are written and dedup keys expire
        # by themselves; what is left is the state index, which may name expired keys.
        await self._scripts["prune"](args=[self.prefix, repr(time.time() * 1000)])
        await self._drop_old_records()

    async def _drop_old_records(self) -> None:
        """Spans and logs stored a row at a time, with an index per trace and per step, by
        versions before their records went a commit at a time: dropped once, on a prune."""
        p = self.prefix
        if not await self._r.exists(f"{p}:spz", f"{p}:lgz"):
            return
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", p)
        for kind in ("spt", "sps", "lgt", "lgs"):
            batch: list[str] = []
            async for key in self._r.scan_iter(match=f"{escaped}:{kind}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await self._r.unlink(*batch)
                    batch = []
            if batch:
                await self._r.unlink(*batch)
        await self._r.unlink(*(f"{p}:{k}" for k in ("sp", "spz", "spseq", "lg", "lgz", "lgseq")))

    @guarded
    async def purge(self) -> int:
        """Delete every key of this app (its prefix); for tests and for starting over."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + ":*"
        removed = 0
        batch: list[str] = []
        async for key in self._r.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += await self._r.unlink(*batch)
                batch = []
        if batch:
            removed += await self._r.unlink(*batch)
        return removed

    # -- stream fan-out ----------------------------------------------------------------------
    @guarded
    async def publish(self, stream: str, payload: dict[str, Any]) -> None:
        if self._fanout is None:
            raise unavailable(self.where, RuntimeError("the backend is not open"))
        await self._fanout.publish(stream, payload)

    async def _subscribed(self, stream: str) -> None:
        if self._fanout is not None:
            await self._fanout.ensure()
