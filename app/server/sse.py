"""Server-Sent Events: `GET /streams/{name}` for `ctx.stream` messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.backends.base import Backend
from app.redact import redact
from app.server.guard import AdminGuard

__all__ = ["sse_response", "streams_router"]

HEARTBEAT = 15.0


def sse_response(
    source: AsyncIterator[dict[str, Any]], request: Request, event: str = "message"
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        yield ": connected\n\n"
        iterator = source.__aiter__()
        pending: asyncio.Task[Any] | None = None
        try:
            while not await request.is_disconnected():
                if pending is None:
                    pending = asyncio.ensure_future(iterator.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                item, pending = pending.result(), None
                yield f"event: {event}\ndata: {json.dumps(redact(item), default=str)}\n\n"
        except StopAsyncIteration:
            return
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def streams_router(backend: Backend) -> APIRouter:
    router = APIRouter(tags=["streams"])

    # Behind the same guard as the Workbench: stream messages are handlers' data.
    @router.get("/streams/{name}", summary="Live messages pushed with ctx.stream (SSE)")
    async def stream(
        name: str, request: Request, _: AdminGuard, trace_id: str | None = None
    ) -> StreamingResponse:
        async def filtered() -> AsyncIterator[dict[str, Any]]:
            async for item in backend.subscribe(f"stream:{name}"):
                if trace_id is None or item.get("trace_id") == trace_id:
                    yield item

        return sse_response(filtered(), request, event=name)

    return router
