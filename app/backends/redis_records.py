"""Reading what the Redis backend recorded: spans, logs, dead letters and the queue itself.

Writes happen in the WRITE script (app/backends/redis_lua.py); this module only turns the stored
JSON back into the records of app.types, newest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _esc
from typing import TYPE_CHECKING, Any, cast

from redis import exceptions as rx

from app.backends.base import QueueStats, safe_text
from app.backends.redis_conn import guarded
from app.types import DeadLetter, LogEntry, Span

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisRecords", "index_text", "log_json", "span_json"]

GROUP = "stepline"
# A retry-set score at or past this is a delivery parked for its key's turn (WAITING, 1e18),
# not a due time: the Workbench's events.js reads it the same way.
PARKED = 1e17
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


_encode_row = json.JSONEncoder(separators=(",", ":")).encode


def _number(x: object) -> str:
    # repr is what json writes for an int or a finite float; anything else takes json's path.
    if type(x) is int or (type(x) is float and x - x == 0.0):
        return repr(x)
    raise ValueError(x)


def _text(x: str | None) -> str:
    return "null" if x is None else _esc(x)


# JSON escapes a lone surrogate, so Redis would store it and hand it back to readers (the
# Workbench) that cannot encode it: text for people is stored as SQLite stores it, escaped.
def span_json(s: Span) -> str:
    """The span as a JSON row (`_SPAN_FIELDS`). Written by hand from json's own string
    escaper, a third of what building a JSON encoder per span cost; the same text."""
    try:
        return (
            f"[{_esc(s.trace_id)},{_esc(s.step)},{_esc(s.kind)},{_number(s.started_at)},"
            f"{_esc(s.span_id)},{_text(s.topic)},{_number(s.attempt)},"
            f"{_number(s.duration_ms)},{_esc(s.status)},{_text(safe_text(s.error))},"
            f"[{','.join(map(_esc, s.emitted))}]]"
        )
    except (TypeError, ValueError):  # a field of an unusual type: json decides
        row = [getattr(s, f) for f in _SPAN_FIELDS]
        row[_SPAN_FIELDS.index("error")] = safe_text(s.error)
        return _encode_row(row)


def index_text(text: str) -> str:
    """`text` as an index member holds it: tab, newline and backslash escaped."""
    if "\\" in text or "\n" in text or "\t" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    return text


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
        """JSON rows of up to `limit` records of `kind` ("sc" spans, "lc" logs) accepted by
        `keep`, newest first. Records are stored a commit at a time; the index member of a
        commit names the step and trace of each row, so only matching rows are read."""
        h, z = f"{self.prefix}:{kind}", f"{self.prefix}:{kind}z"
        want = index_text(step) if step else None
        if trace_id:
            trace = index_text(trace_id)
            pattern = "*\t" + re.sub(r"([*?\[\]\\])", r"\\\1", trace) + "\n*"
            found = [m async for m, _ in self._r.zscan_iter(z, match=pattern, count=500)]
            found.sort(key=lambda m: int(m.split("\n", 1)[0]), reverse=True)
            return await self._pick(h, found, trace, want, keep, limit)
        out: list[str] = []
        start, page = 0, 8  # commits; a page grows while the rows found fall short
        while len(out) < limit:
            members = cast(list[str], await self._r.zrevrange(z, start, start + page - 1))
            if not members:
                break
            out += await self._pick(h, members, None, want, keep, limit - len(out))
            start += page
            page = min(page * 2, 64)
        return out[:limit]

    async def _pick(
        self,
        h: str,
        members: list[str],
        trace: str | None,
        step: str | None,
        keep: Any,
        limit: int,
    ) -> list[str]:
        """Rows of these commits (newest first) whose index entry matches, that `keep` takes."""
        chosen: list[tuple[str, list[int]]] = []
        for member in members:
            seq, _, *entries = member.split("\n")  # entries end with "" (the last newline)
            rows = []
            for pos in range(len(entries) - 2, -1, -1):  # the last row of a commit is newest
                s, _, t = entries[pos].partition("\t")
                if (trace is None or t == trace) and (step is None or s == step):
                    rows.append(pos)
            if rows:
                chosen.append((seq, rows))
        out: list[str] = []
        start = 0
        while start < len(chosen) and len(out) < limit:
            # Only as many commits as could fill the limit: one holds a whole commit's rows.
            end, rows_in = start, 0
            while end < len(chosen) and rows_in < limit - len(out) and end - start < 100:
                rows_in += len(chosen[end][1])
                end += 1
            part = chosen[start:end]
            bodies = cast(list[str | None], await self._r.hmget(h, [seq for seq, _ in part]))
            for (_, rows), body in zip(part, bodies, strict=True):
                if body is None:
                    continue
                lines = body.split("\n")
                out += [lines[pos] for pos in rows if pos < len(lines) and keep(lines[pos])]
            start = end
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

        found = await self._newest("sc", trace_id, step, keep, limit)
        return [Span(**dict(zip(_SPAN_FIELDS, json.loads(r), strict=True))) for r in found]

    @guarded
    async def logs(
        self, *, trace_id: str | None = None, step: str | None = None, limit: int = 200
    ) -> list[LogEntry]:
        def keep(raw: str) -> bool:
            return not step or json.loads(raw)[2] == step

        found = await self._newest("lc", trace_id, step, keep, limit)
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
        now = self.clock()
        steps = await self._steps()
        async with self._r.pipeline(transaction=False) as pipe:
            for s in steps:
                pipe.xlen(f"{self.prefix}:q:{s}")
                pipe.zcard(f"{self.prefix}:dl:{s}")
                # Scheduled is due in the future, as on SQLite and in scheduled(): a retry whose
                # time has come but that no claim has moved back to the stream yet is queued.
                pipe.zcount(f"{self.prefix}:dl:{s}", f"({now!r}", f"({PARKED!r}")
                pipe.xpending(f"{self.prefix}:q:{s}", GROUP)
            pipe.hgetall(f"{self.prefix}:deadn")
            *rows, dead = await _run(pipe)
        out: QueueStats = {}
        for n, s in enumerate(steps):
            length, held, scheduled, summary = rows[4 * n : 4 * n + 4]
            flying = summary["pending"] if isinstance(summary, dict) else 0
            if length or held:
                # One waiting for its key's turn is queued, as on SQLite: it has no due time.
                out[s] = {
                    "queued": length - flying + held - scheduled,
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
                status = "queued" if due <= now or due >= PARKED else "scheduled"
                row = _retry_row(s, member, due, status)
                row["_order"] = int(row["id"])
                rows.append(row)
        rows.sort(key=lambda r: r["_order"])
        for r in rows:
            del r["_order"]
        return rows[:limit]

    @guarded
    async def scheduled(self, limit: int = 100, step: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        steps = [step] if step is not None else await self._steps()
        async with self._r.pipeline(transaction=False) as pipe:
            for s in steps:
                # The retry set is ordered by due time: its first entries past now are the
                # soonest; one parked for its key's turn (at WAITING) has no time to show.
                pipe.zrangebyscore(
                    f"{self.prefix}:dl:{s}", f"({now!r}", f"({PARKED!r}", 0, limit, withscores=True
                )
            found = await pipe.execute()
        rows: list[dict[str, Any]] = []
        for s, members in zip(steps, found, strict=True):
            for member, due in cast(list[tuple[str, float]], members):
                rows.append(_retry_row(s, member, due, "scheduled"))
        rows.sort(key=lambda r: (r["due"], int(r["id"])))
        return rows[:limit]


def _retry_row(step: str, member: str, due: float, status: str) -> dict[str, Any]:
    """A retry-set member (`seq|attempt|payload`) as the queue views show a delivery."""
    seq, attempt, payload = member.split("|", 2)
    p = json.loads(payload)
    return {
        "id": seq,
        "step": step,
        "topic": p["t"],
        "data": p["d"],
        "trace_id": p["tr"],
        "attempt": int(attempt),
        "due": due,
        "created_at": p["c"],
        "status": status,
    }


async def _run(pipe: Any) -> list[Any]:
    # A step whose stream exists without its consumer group yet answers NOGROUP to
    # XPENDING; that reads as "nothing in flight", so errors are kept in the results.
    return await pipe.execute(raise_on_error=False)


async def _pending_of(r: aioredis.Redis, stream: str, limit: int) -> list[dict[str, Any]]:
    try:
        return await r.xpending_range(stream, GROUP, min="-", max="+", count=limit)
    except rx.ResponseError:  # no consumer group yet: nothing is in flight
        return []
