"""What the process says about itself: `/livez` (it answers), `/readyz` (it can do its work,
or the reasons it cannot), `/healthz` (the old single check, kept for compatibility), and one
clear line instead of a traceback when it cannot start.

An orchestrator restarts a pod whose liveness fails and stops sending traffic to one that is
not ready. So `/livez` never looks at the backend (a short Redis outage must not restart every
pod), while `/readyz` fails for everything that stops work: the backend unreachable, the last
write refused for a storage reason (disk full, read-only, corrupt, out of memory) until one
succeeds, a step that failed to load, a background task (engine, writer, cron) that died, a
flow that is required but not configured, or (under `start --workers N`) a dead worker. The
backend's ping is bounded by STEPLINE_READY_TIMEOUT: a Redis that accepts connections and never
answers makes the probe answer 503 in time, not hang until the orchestrator's own timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.plugins import FlowReadiness, readiness_checks
from app.redact import mask_text
from app.runtime import Runtime

__all__ = ["ReadinessCheck", "StartupReport", "health_router", "readiness", "register_checks"]

log = logging.getLogger("stepline.server")

ReadinessCheck = Callable[[], Awaitable[list[str]]]
"""Extra readiness checks (a flow's configuration, say): each returns its problems."""


def register_checks(runtime: Runtime) -> None:
    """Register (once) the `/readyz` check of every installed flow the runtime serves, and of
    the worker processes when `start --workers N` runs them beside this server."""
    from app.worker import active_pool

    checks = runtime.readiness_checks
    known = {c.plugin.name for c in checks if isinstance(c, FlowReadiness)}
    flows = readiness_checks(runtime.registry.flows, runtime.state)
    checks.extend(c for c in flows if c.plugin.name not in known)
    pool = active_pool()
    if pool is not None and pool.readiness not in checks:
        checks.append(pool.readiness)


async def _backend_problem(runtime: Runtime) -> str | None:
    backend = runtime.backend
    limit = runtime.settings.ready_timeout
    try:
        answered = await asyncio.wait_for(backend.ping(), limit)
    except TimeoutError:
        return (
            f"the {backend.name} backend did not answer a ping within {limit:g} s "
            "(STEPLINE_READY_TIMEOUT): it is overloaded, paused or unreachable"
        )
    return None if answered else f"the {backend.name} backend does not answer"


async def _probe_write(runtime: Runtime) -> None:
    """Try a write while the last one failed for a storage reason: the error clears once the
    store takes writes again, even when no request or run comes to write (bounded by
    STEPLINE_READY_TIMEOUT like the ping)."""
    try:
        await asyncio.wait_for(runtime.backend.probe_write(), runtime.settings.ready_timeout)
    except Exception as exc:  # the backend noted why in storage_error; the probe says no more
        log.debug("the write probe failed: %s", exc)


async def _check_problems(check: ReadinessCheck, limit: float) -> list[str]:
    """A check's problems; one that hangs or breaks is a reason too, never a hung or 500 probe."""
    name = f"flow {check.plugin.name}" if isinstance(check, FlowReadiness) else None
    name = name or getattr(check, "__qualname__", None) or type(check).__name__
    try:
        return list(await asyncio.wait_for(check(), limit))
    except TimeoutError:
        return [f"the readiness check of {name} did not finish within {limit:g} s"]
    except Exception as exc:
        log.error("the readiness check of %s failed", name, exc_info=exc)
        return [f"the readiness check of {name} failed ({type(exc).__name__}); see the log"]


async def readiness(runtime: Runtime, *, steps: bool = True) -> list[str]:
    """Why this process cannot do its work now; empty when it can. Without `steps` (the old
    `/healthz`) only the backend and the background tasks count."""
    problems: list[str] = []
    backend = runtime.backend
    if runtime.startup_problem is not None:
        problems.append(f"starting: {runtime.startup_problem}")
    elif (problem := await _backend_problem(runtime)) is not None:
        problems.append(problem)
    if backend.storage_error is not None and not problems:
        await _probe_write(runtime)
    if backend.storage_error is not None:
        problems.append(f"the last write failed: {backend.storage_error}")
    stalled = runtime.engine.claim_failure
    if stalled is not None:
        problems.append(mask_text(stalled))
    for name, error in sorted(runtime.task_errors.items()):
        problems.append(f"the {name} task stopped ({error}); it is being restarted")
    if not steps:
        return problems
    if runtime.registry.errors:
        failed = "; ".join(str(e) for e in runtime.registry.errors[:3])
        problems.append(f"{len(runtime.registry.errors)} step file(s) failed to load: {failed}")
    for check in runtime.readiness_checks:
        problems.extend(await _check_problems(check, runtime.settings.ready_timeout))
    return problems


def health_router(runtime: Runtime) -> APIRouter:
    register_checks(runtime)
    router = APIRouter(tags=["stepline"])

    @router.get("/livez", summary="200 while the process answers")
    async def livez() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", summary="200 when it can do its work, else 503 with the reasons")
    async def readyz() -> JSONResponse:
        problems = await readiness(runtime)
        if problems:
            return JSONResponse({"status": "unavailable", "reasons": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get("/healthz", summary="200 while the backend answers and accepts writes")
    async def healthz() -> JSONResponse:
        problems = await readiness(runtime, steps=False)
        if problems:
            return JSONResponse(
                {"status": "unavailable", "backend": runtime.backend.name, "reasons": problems},
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    return router


class StartupReport:
    """ASGI middleware: when start-up fails, the server logs our one-line reason, not the
    traceback the framework would format."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            reason = self.runtime.startup_error
            if message["type"] == "lifespan.startup.failed" and reason:
                message = {**message, "message": f"cannot start: {reason}"}
            await send(message)

        await self.app(scope, receive, sending)
