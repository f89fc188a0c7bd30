"""Reading what the Redis backend recorded: spans, logs, dead letters and the queue itself.

Writes happen in the WRITE script (app/backends/redis_lua.py); this module only turns the stored
JSON back into the records of app.types, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from redis import exceptions as rx

from app.backends.base import QueueStats, safe_text
from app.backends.redis_conn import guarded
from app.types import DeadLetter, LogEntry, Span

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisRecords", "log_json", "span_json"]

GROUP = "stepline"
_SPAN_FIELDS = (
    "trace_id",
    "step",
    "kind",
    "started_at",
    "span_id",
    "topic",
    "attempt",
    "duration_ms",
    "status",
    "error",
    "emitted",
)


# JSON escapes a lone surrogate, so Redis would store it and hand it back to readers (the
# Workbench) that cannot encode it: text for people is stored as SQLite stores it, escaped.
def span_json(s: Span) -> str:
    row = [getattr(s, f) for f in _SPAN_FIELDS]
    row[_SPAN_FIELDS.index("error")] = safe_text(s.error)
    return json.dumps(row, separators=(",", ":"))


def log_json(e: LogEntry) -> str:
    return json.dumps(
        [e.level, safe_text(e.message), e.step, e.trace_id, e.span_id, e.fields, e.ts],
        separators=(",", ":"),
        default=str,
    )


class RedisRecords:
    prefix: str
    clock: Callable[[], float]
    where: str

    @property
    def _r(self) -> aioredis.Redis:  # the open client, provided by RedisBackend
        raise NotImplementedError

    async def _newest(
        self, kind: str, trace_id: str | None, step: str | None, keep: Any, limit: int
    ) -> list[str]:
        """JSON of up to `limit` records of `kind` ("sp" or "lg") accepted by `keep`."""
        h = f"{self.prefix}:{kind}"
        if trace_id:
            index, plain = f"{h}t:{trace_id}", True
        elif step:
            index, plain = f"{h}s:{step}", True
        else:
            index, plain = f"{h}z", False
        out: list[str] = []
        start, page = 0, max(limit, 200)
        while len(out) < limit:
            members = cast(list[str], await self._r.zrevrange(index, start, start + page - 1))
            if not members:
                break
            seqs = members if plain else [m.split("\n", 1)[0] for m in members]
            for raw in cast(list[str | None], await self._r.hmget(h, seqs)):
                if raw is not None and keep(raw):
                    out.append(raw)
            start += page
        return out[:limit]

    @guarded
    async def spans(
        self,
        *,
        trace_id: str | None = None,
        step: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Span]:
        def keep(raw: str) -> bool:
            values = json.loads(raw)
            return (not step or values[1] == step) and (not status or values[8] == status)

        found = await self._newest("sp", trace_id, step, keep, limit)
        return [Span(**dict(zip(_SPAN_FIELDS, json.loads(r), strict=True))) for r in found]

    @guarded
    async def logs(
        self, *, trace_id: str | None = None, step: str | None = None, limit: int = 200
    ) -> list[LogEntry]:
        def keep(raw: str) -> bool:
            return not step or json.loads(raw)[2] == step

        found = await self._newest("lg", trace_id, step, keep, limit)
        return [LogEntry(*json.loads(r)) for r in found]

    @guarded
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        ids = cast(list[str], await self._r.zrevrange(f"{self.prefix}:deadz", 0, limit - 1))
        if not ids:
            return []
        bodies = cast(list[str | None], await self._r.hmget(f"{self.prefix}:dead", ids))
        metas = cast(list[str | None], await self._r.hmget(f"{self.prefix}:deadm", ids))
        out: list[DeadLetter] = []
        for did, body, meta in zip(ids, bodies, metas, strict=True):
            if body is None or meta is None:
                continue
            step, payload = body.split("\n", 1)
            p, m = json.loads(payload), json.loads(meta)
            out.append(
                DeadLetter(
                    did,
                    step,
                    p["t"],
                    p["d"],
                    p["tr"],
                    m["attempts"],
                    m["error"],
                    m["traceback"],
                    m["failed_at"],
                )
            )
        return out

    async def _steps(self) -> list[str]:
        return sorted(cast(set[str], await self._r.smembers(f"{self.prefix}:steps")))

    @guarded
    async def pending(self, step: str | None = None) -> int:
        steps = [step] if step is not None else await self._steps()
        async with self._r.pipeline(transaction=False) as pipe:
            for s in steps:
                pipe.xlen(f"{self.prefix}:q:{s}")
                pipe.zcard(f"{self.prefix}:dl:{s}")
            return sum(await pipe.execute())

    @guarded
    async def queue_stats(self) -> QueueStats:
        steps = await self._steps()
        async with self._r.pipeline(transaction=False) as pipe:
            for s in steps:
                pipe.xlen(f"{self.prefix}:q:{s}")
                pipe.zcard(f"{self.prefix}:dl:{s}")
                pipe.xpending(f"{self.prefix}:q:{s}", GROUP)
            pipe.hgetall(f"{self.prefix}:deadn")
            *rows, dead = await _run(pipe)
        out: QueueStats = {}
        for n, s in enumerate(steps):
            length, scheduled, summary = rows[3 * n : 3 * n + 3]
            flying = summary["pending"] if isinstance(summary, dict) else 0
            if length or scheduled:
                out[s] = {
                    "queued": length - flying,
                    "scheduled": scheduled,
                    "in_flight": flying,
                    "dead": 0,
                }
        for s, n in dead.items():
            if int(n) > 0:
                out.setdefault(s, {"queued": 0, "scheduled": 0, "in_flight": 0, "dead": 0})[
                    "dead"
                ] = int(n)
        return out

    @guarded
    async def queued(self, limit: int = 100) -> list[dict[str, Any]]:
        now = self.clock()
        rows: list[dict[str, Any]] = []
        for s in await self._steps():
            q = f"{self.prefix}:q:{s}"
            flying = {
                p["message_id"]: p["times_delivered"] for p in await _pending_of(self._r, q, limit)
            }
            entries = cast(list[tuple[str, dict[str, str]]], await self._r.xrange(q, count=limit))
            for entry_id, fields in entries:
                seq = entry_id.split("-", 1)[1]
                p = json.loads(fields["p"])
                n = flying.get(entry_id, 0)
                rows.append(
                    {
                        "id": seq,
                        "step": s,
                        "topic": p["t"],
                        "data": p["d"],
                        "trace_id": p["tr"],
                        "attempt": int(fields["a"]) + n,
                        "due": p["c"] if not n else None,
                        "created_at": p["c"],
                        "status": "in_flight" if n else "queued",
                        "_order": int(seq),
                    }
                )
            scheduled = cast(
                list[tuple[str, float]],
                await self._r.zrange(f"{self.prefix}:dl:{s}", 0, limit - 1, withscores=True),
            )
            for member, due in scheduled:
                seq, attempt, payload = member.split("|", 2)
                p = json.loads(payload)
                rows.append(
                    {
                        "id": seq,
                        "step": s,
                        "topic": p["t"],
                        "data": p["d"],
                        "trace_id": p["tr"],
                        "attempt": int(attempt),
                        "due": due,
                        "created_at": p["c"],
                        "status": "queued" if due <= now else "scheduled",
                        "_order": int(seq),
                    }
                )
        rows.sort(key=lambda r: r["_order"])
        for r in rows:
            del r["_order"]
        return rows[:limit]


async def _run(pipe: Any) -> list[Any]:
    # A step whose stream exists without its consumer group yet answers NOGROUP to
    # XPENDING; that reads as "nothing in flight", so errors are kept in the results.
    return await pipe.execute(raise_on_error=False)


async def _pending_of(r: aioredis.Redis, stream: str, limit: int) -> list[dict[str, Any]]:
    try:
        return await r.xpending_range(stream, GROUP, min="-", max="+", count=limit)
    except rx.ResponseError:  # no consumer group yet: nothing is in flight
        return []
