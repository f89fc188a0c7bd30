"""`/workbench/api/steps/{name}`: what the Flows view shows for one step, in one request:
its config, its source file, its queue and its recent runs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from app.redact import redact, redact_text
from app.runtime import Runtime
from app.server.guard import AdminGuard
from app.server.steps_view import step_view

__all__ = ["step_detail_router"]

MAX_SOURCE = 200_000


def step_detail_router() -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/steps/{name}")
    async def step_detail(name: str, request: Request, _: AdminGuard,
                          runs: int = 20) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        step = runtime.registry.steps.get(name)
        if step is None:
            raise HTTPException(404, f"no step named {name!r}; see /_stepline/steps")
        try:
            source = step.file.read_text(encoding="utf-8", errors="replace")[:MAX_SOURCE]
        except OSError as exc:
            source = f"(cannot read {step.file}: {exc.strerror})"
        spans = await runtime.backend.spans(step=name, limit=max(1, min(runs, 200)))
        stats = await runtime.backend.queue_stats()
        return {"name": name, "kind": step.kind, "file": str(step.file),
                "config": redact(step_view(step)), "source": redact_text(source),
                "queue": stats.get(name, {}),
                "runs": [redact(asdict(s)) for s in spans]}

    return router
