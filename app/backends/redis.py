"""The scale-out backend: every Stepline process of an app shares one Redis.

Deliveries live in Redis Streams, one stream and consumer group per subscribing step, so any
process can claim work and a dead process's leased work is taken over (XPENDING IDLE + XCLAIM)
once its lease runs out. Every write the engine batches - emits, acknowledgements, retries,
dead letters, spans and logs - is one Lua script, which Redis runs atomically: a handler's emits
are visible exactly when its acknowledgement is. The key layout is described in redis_lua.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis import exceptions as rx

from app.backends import redis_lua as lua
from app.backends.base import Backend, dump_json, valid_ids
from app.backends.redis_conn import check_config, connect, guarded, redacted, unavailable
from app.backends.redis_pubsub import Fanout
from app.backends.redis_records import RedisRecords, log_json, span_json
from app.backends.redis_state import RedisState
from app.settings import Settings
from app.types import Batch, Delivery, FlowPlan, Message

__all__ = ["RedisBackend"]

_SEP = (",", ":")


def _payload(m: Message, now: float) -> str:
    return dump_json(
        {"t": m.topic, "d": m.data, "tr": m.trace_id, "c": now},
        f"data emitted to {m.topic!r}",
        separators=_SEP,
    )


_NO_PLAN = FlowPlan()


def _message_args(m: Message, now: float) -> list[Any]:
    # A delayed emit waits in the step's retry set until its due time ("" = at once).
    due = repr(m.due) if m.due is not None and m.due > now else ""
    parts = m.partitions or {}
    steps: list[Any] = []
    for step in m.steps:
        p = parts.get(step) or _NO_PLAN
        quiet = "" if p.debounce_key is None else repr(p.quiet)
        steps += [step, p.key or "", p.limit or 0, p.debounce_key or "", quiet, repr(p.max_wait)]
        steps.append(p.rate_key or "")
    return [m.topic, m.key or "", _payload(m, now), due, len(m.steps), *steps]


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
            await check_config(client, self.where, self.settings)
        except (rx.RedisError, OSError) as exc:
            await client.aclose()
            raise unavailable(self.where, exc) from exc
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._scripts = {
            name.lower(): client.register_script(getattr(lua, name)) for name in lua.__all__
        }
        self._fanout = Fanout(client, self.prefix, self.where, self._deliver_local)

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
        s = self.settings
        now = self.clock()
        args: list[Any] = [
            self.prefix,
            repr(now),
            int(s.dedup_ttl * 1000),
            s.dead_retention,
            s.trace_retention,
            s.log_retention,
            len(batch.messages),
            len(batch.outcomes),
            len(batch.spans),
            len(batch.logs),
        ]
        for m in batch.messages:
            args += _message_args(m, now)
        for o in batch.outcomes:
            d = o.delivery
            meta = ""
            if o.status == "dead":
                meta = json.dumps(
                    {
                        "attempts": d.attempt,
                        "error": o.error or "",
                        "traceback": o.traceback or "",
                        "failed_at": now,
                    }
                )
            retry_at = o.retry_at if o.retry_at is not None else now
            args += [
                d.step,
                d.id,
                o.status,
                repr(retry_at),
                d.attempt,
                meta,
                d.key or "",
                d.key_limit,
            ]
        for sp in batch.spans:
            args += [sp.trace_id or "", sp.step or "", span_json(sp)]
        for e in batch.logs:
            args += [e.trace_id or "", e.step or "", log_json(e)]
        await self._scripts["write"](args=args)
        self.storage_error = None  # only a real write proves Redis takes writes

    @guarded
    async def claim(self, wants: Mapping[str, int], lease: Mapping[str, float]) -> list[Delivery]:
        wants = {s: n for s, n in wants.items() if n > 0}
        if not wants:
            return []
        rows = await self._claim(wants, lease)
        out: list[Delivery] = []
        for i in range(0, len(rows), 4):
            step, seq, raw, attempt = rows[i : i + 4]
            p = json.loads(raw)
            out.append(
                Delivery(
                    seq,
                    step,
                    p["t"],
                    p["d"],
                    p["tr"],
                    int(attempt),
                    p["c"],
                    p.get("k"),
                    p.get("kl", 0),
                )
            )
        return out

    async def _claim(self, wants: Mapping[str, int], lease: Mapping[str, float]) -> list[Any]:
        now = self.clock()
        args: list[Any] = [self.prefix, self.consumer, repr(now), len(wants)]
        for step, n in wants.items():
            seconds = lease.get(step, self.settings.lease_seconds)
            # Scanning for expired leases costs a walk of the pending list; a quarter of the
            # lease between scans keeps takeover prompt without paying it on every poll.
            reclaim = now - self._reclaimed_at.get(step, 0.0) >= min(seconds / 4, 1.0)
            if reclaim:
                self._reclaimed_at[step] = now
            rate, window, per_key = self.rate_limits.get(step, (0, 0.0, False))
            args += [step, n, max(1, int(seconds * 1000)), "1" if reclaim else "0", rate, window]
            args.append("1" if per_key else "0")
        return await self._scripts["claim"](args=args)

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
            *_message_args(message, self.clock()),
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
