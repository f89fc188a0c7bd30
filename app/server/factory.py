"""`create_app(runtime)`: the FastAPI application for one Stepline runtime."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import BackendError, SteplineError
from app.runtime import Runtime
from app.server.admin import admin_router
from app.server.api_steps import add_api_steps
from app.server.dispatch import SteplineApp
from app.server.health import StartupReport, health_router
from app.server.limits import AdminJson, BodyLimit
from app.server.ops import add_ops_routes
from app.server.sse import streams_router
from app.version import __version__

__all__ = ["create_app"]

log = logging.getLogger("stepline.server")
WORKBENCH = Path(__file__).resolve().parent.parent / "workbench"
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def create_app(runtime: Runtime, *, manage: bool = True, work: bool = True) -> FastAPI:
    """Build the app. With `manage`, the app's lifespan starts and stops the runtime
    (`work` says whether this process also runs event handlers and cron)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            try:
                await runtime.start_until_signal(work=work, cron=work)
            except SteplineError as exc:
                runtime.startup_error = str(exc)
                raise
        try:
            yield
        finally:
            if manage:
                await runtime.stop()

    app = SteplineApp(
        title="Stepline",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,  # served from local files by add_ops_routes
        description="API steps of this Stepline app.",
    )
    app.state.settings = runtime.settings
    app.state.runtime = runtime

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            reason = "; ".join(str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors)
            return JSONResponse(
                {"error": f"request body is not valid JSON: {reason}"}, status_code=400
            )
        return JSONResponse(
            {"error": "invalid request", "detail": jsonable_encoder(errors)}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(BackendError)
    async def backend_down(_: Request, exc: BackendError) -> JSONResponse:
        log.error("backend error: %s", exc)
        return JSONResponse(
            {"error": f"the {runtime.backend.name} backend is unavailable; retry later"},
            status_code=503,
        )

    health = health_router(runtime)
    app.include_router(health)
    steps = add_api_steps(app, runtime)  # first: the hot routes are matched before the admin ones
    app.hot_steps(steps, earlier=(r.path for r in health.routes if isinstance(r, APIRoute)))
    add_ops_routes(app, runtime)
    app.include_router(streams_router(runtime.backend))
    app.include_router(admin_router(runtime))
    if (WORKBENCH / "routes.py").exists():
        from app.workbench.routes import workbench_router

        app.include_router(workbench_router())
    app.add_middleware(AdminJson)
    app.add_middleware(BodyLimit, limit=runtime.settings.body_limit)  # outermost: bounds all
    app.add_middleware(StartupReport, runtime=runtime)
    app.own_middleware_added()  # step endpoints do without these three (see dispatch.py)
    app.openapi = lambda: _with_path_parameters(app)  # type: ignore[method-assign]
    return app


def _with_path_parameters(app: FastAPI) -> dict[str, Any]:
    """The schema, with the path parameters of API steps declared: their endpoints read them
    from the request, so FastAPI cannot see them, and a path template whose parameters are
    not declared is an invalid OpenAPI document."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path, operations in schema.get("paths", {}).items():
        names = _PARAM.findall(path)
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
            missing = [n for n in names if n not in declared]
            operation.setdefault("parameters", []).extend(
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in missing
            )
            if not operation["parameters"]:
                del operation["parameters"]
    app.openapi_schema = schema
    return schema
