"""The JSON API under `/_stepline/` that the Workbench and scripts read."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from app.errors import NotFound
from app.redact import redact
from app.runtime import Runtime
from app.server.admin_state import state_router
from app.server.guard import AdminGuard
from app.server.sse import sse_response
from app.server.steps_view import flow_graph, step_view
from app.types import LogEntry, Span

__all__ = ["admin_router"]

Limit = Annotated[int, Query(ge=1, le=1000, description="Most items to return.")]


class EmitBody(BaseModel):
    topic: str
    data: Any = None
    key: str | None = None
    # As for ctx.emit: deliver no earlier than `delay` seconds from now, or at `at` (with a zone).
    delay: float | None = Field(None, ge=0, allow_inf_nan=False)
    # An HTTP caller gets pydantic's 422 naming the field, not ctx.emit's Python advice.
    at: AwareDatetime | None = None


# Dead-letter ids are database row ids: ASCII digits that fit a signed 64-bit integer.
DeadLetterId = Annotated[str, Field(pattern=r"^[0-9]{1,18}$")]


class ReplayBody(BaseModel):
    ids: list[DeadLetterId] | None = Field(None, description="Dead-letter ids; omit to replay all.")


def _span(span: Span) -> dict[str, Any]:
    # A span's error text can quote the data that failed, secrets included.
    return redact(asdict(span))


def _log(entry: LogEntry) -> dict[str, Any]:
    return redact(asdict(entry))


def admin_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/_stepline", tags=["stepline"])
    backend, registry = runtime.backend, runtime.registry

    @router.get("/steps")
    async def steps(_: AdminGuard) -> dict[str, Any]:
        return {
            "steps": [step_view(s) for s in registry.steps.values()],
            "errors": [
                {"file": e.file, "field": e.field, "error": e.reason} for e in registry.errors
            ],
            "warnings": registry.warnings(),
            "flows": registry.flows,
        }

    @router.get("/flows")
    async def flows(_: AdminGuard) -> dict[str, Any]:
        return flow_graph(registry)

    @router.get("/traces")
    async def traces(
        _: AdminGuard,
        step: str | None = None,
        status: str | None = None,
        flow: str | None = None,
        limit: Limit = 50,
    ) -> dict[str, Any]:
        by_trace: dict[str, list[Span]] = {}
        if step:
            # A trace that contains the step is shown whole: its status and span count are the
            # trace's, not those of the one span that matched.
            for s in await backend.spans(step=step, limit=max(limit * 5, 100)):
                by_trace.setdefault(s.trace_id, [])
            for trace_id in list(by_trace)[: max(limit * 2, 50)]:
                by_trace[trace_id] = await backend.spans(trace_id=trace_id, limit=1000)
        else:
            for s in await backend.spans(limit=max(limit * 20, 200)):
                by_trace.setdefault(s.trace_id, []).append(s)
        members = set(registry.flows.get(flow, [])) if flow else None
        out: list[dict[str, Any]] = []
        for trace_id, group in by_trace.items():
            if members is not None and not members & {s.step for s in group}:
                continue
            worst = (
                "failed"
                if any(s.status == "failed" for s in group)
                else "retrying"
                if any(s.status == "retrying" for s in group)
                else "ok"
            )
            if status and worst != status:
                continue
            first = min(group, key=lambda s: s.started_at)
            end = max(s.started_at + s.duration_ms / 1000 for s in group)
            out.append(
                {
                    "trace_id": trace_id,
                    "root": first.step,
                    "started_at": first.started_at,
                    "duration_ms": (end - first.started_at) * 1000,
                    "status": worst,
                    "spans": len(group),
                    "steps": sorted({s.step for s in group}),
                }
            )
        # Newest first by when the trace started, not by its latest span.
        out.sort(key=lambda t: t["started_at"], reverse=True)
        return {"traces": out[:limit]}

    @router.get("/traces/{trace_id}")
    async def trace(trace_id: str, _: AdminGuard) -> dict[str, Any]:
        spans = await backend.spans(trace_id=trace_id, limit=1000)
        if not spans:
            raise HTTPException(404, f"no trace {trace_id!r} (it may have been pruned)")
        logs = await backend.logs(trace_id=trace_id, limit=2000)
        return {
            "trace_id": trace_id,
            "spans": sorted((_span(s) for s in spans), key=lambda s: s["started_at"]),
            "logs": sorted((_log(e) for e in logs), key=lambda e: e["ts"]),
        }

    @router.get("/logs")
    async def logs(
        _: AdminGuard,
        trace_id: str | None = None,
        step: str | None = None,
        level: str | None = None,
        q: str | None = None,
        limit: Limit = 200,
    ) -> dict[str, Any]:
        entries = await backend.logs(trace_id=trace_id, step=step, limit=limit * 5)
        picked = [
            e
            for e in entries
            if (not level or e.level == level) and (not q or q.lower() in e.message.lower())
        ][:limit]
        return {"logs": [_log(e) for e in picked]}

    @router.get("/logs/stream")
    async def log_stream(request: Request, _: AdminGuard) -> StreamingResponse:
        async def tail() -> AsyncIterator[dict[str, Any]]:
            # Polling the store (not in-process pub/sub) shows logs of every worker process.
            # The last 1,000 entries sent, oldest first, so the bound drops the oldest.
            seen: deque[tuple[float, str]] = deque(
                ((e.ts, e.message) for e in reversed(await backend.logs(limit=50))), maxlen=1000
            )
            while True:
                await asyncio.sleep(0.5)
                for e in reversed(await backend.logs(limit=200)):
                    if (e.ts, e.message) not in seen:
                        seen.append((e.ts, e.message))
                        yield _log(e)

        return sse_response(tail(), request, event="log")

    @router.get("/events")
    async def events(_: AdminGuard, limit: Limit = 100) -> dict[str, Any]:
        dead = await backend.dead_letters(limit)
        return {
            "stats": await backend.queue_stats(),
            "queued": redact(await backend.queued(limit)),
            # Soonest first and read by due time: behind a backlog of older deliveries the
            # oldest-first `queued` would show these only in the counts.
            "scheduled": redact(await backend.scheduled(limit)),
            "dead": [redact(asdict(d)) for d in dead],
        }

    @router.post("/events/replay")
    async def replay(body: ReplayBody, _: AdminGuard) -> dict[str, int]:
        count = await backend.replay(body.ids)
        if body.ids and count == 0:
            raise HTTPException(404, "no dead letter with those ids")
        runtime.engine.wake(None)
        return {"replayed": count}

    @router.post("/emit", status_code=202)
    async def emit(body: EmitBody, _: AdminGuard) -> dict[str, str]:
        try:
            trace_id = await runtime.emit(
                body.topic, body.data, key=body.key, delay=body.delay, at=body.at
            )
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None
        return {"trace_id": trace_id}

    @router.post("/cron/{name}/run", status_code=202)
    async def run_cron(name: str, _: AdminGuard) -> dict[str, str]:
        try:
            return {"trace_id": await runtime.trigger_cron(name)}
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    router.include_router(state_router(runtime))
    return router
