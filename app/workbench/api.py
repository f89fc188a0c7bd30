"""`/workbench/api/steps/{name}`: what the Flows view shows for one step, in one request:
its config, its source file, its queue, its recent runs and, for a cron step, its next run;
`/workbench/api/streams`: the stream names the steps push to, with their last message's
time; `/workbench/api/session`: whether the server asks for a sign-in."""

from __future__ import annotations

import ast
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from app.cron import next_run, next_tick
from app.flow import describe
from app.redact import redact, redact_text
from app.runtime import Runtime
from app.server.guard import AdminGuard
from app.server.steps_view import step_view
from app.step_config import CronConfig, EventConfig

__all__ = ["step_detail_router"]

MAX_SOURCE = 200_000


def step_detail_router() -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/session")
    async def session(request: Request, _: AdminGuard) -> dict[str, bool]:
        """Whether this server asks for a sign-in (the page shows "Sign out" only then)."""
        return {"sign_in": request.app.state.settings.workbench_token is not None}

    @router.get("/streams")
    async def streams(request: Request, _: AdminGuard) -> dict[str, Any]:
        """Stream names the steps push to (literal `ctx.stream("name", ...)` calls, and any
        name this server has seen a message on), each with that last message's time."""
        runtime: Runtime = request.app.state.runtime
        found: dict[str, set[str]] = {}
        for step in runtime.registry.steps.values():
            for name in _streams_in(step.file):
                found.setdefault(name, set()).add(step.name)
        seen = dict(runtime.backend.streams_seen)
        for name in seen:
            found.setdefault(name, set())
        return {
            "streams": [
                {"name": n, "steps": sorted(s), "last": seen.get(n)}
                for n, s in sorted(found.items())
            ]
        }

    @router.get("/steps/{name}")
    async def step_detail(
        name: str, request: Request, _: AdminGuard, runs: int = 20
    ) -> dict[str, Any]:
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
        out = {
            "name": name,
            "kind": step.kind,
            "file": str(step.file),
            "path": _shown(step.file, runtime.settings.steps),
            "config": redact(step_view(step)),
            "source": redact_text(source),
            "queue": stats.get(name, {}),
            "runs": [redact(asdict(s)) for s in spans],
        }
        if isinstance(step.config, EventConfig):
            out["flow_control"] = describe(step.config)  # key, debounce, rate limit in words
            soonest = await runtime.backend.scheduled(1, step=name) if stats.get(name) else []
            out["next_due"] = soonest[0]["due"] if soonest else None
        if isinstance(step.config, CronConfig):
            now = runtime.cron.clock()
            out["next_run"] = next_run(step.config, now)
            out["next_run_ts"] = next_tick(step.config, now)
        return out

    return router


def _shown(file: Path, dirs: list[Path]) -> str:
    """The step file as its project names it (`steps/orders/place_order_step.py`), not the
    machine's absolute path; the full path stays in `file`."""
    for directory in dirs:
        base = directory.resolve()
        try:
            return str(Path(base.name) / file.resolve().relative_to(base))
        except ValueError:
            continue
    return str(file)


def _streams_in(file: Path) -> list[str]:
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "stream"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ]
