"""`create_app(runtime)`: the FastAPI application for one Stepline runtime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import BackendError
from app.runtime import Runtime
from app.server.admin import admin_router
from app.server.api_steps import add_api_steps
from app.server.limits import BodyLimit
from app.server.sse import streams_router

__all__ = ["create_app"]

log = logging.getLogger("stepline.server")
WORKBENCH = Path(__file__).resolve().parent.parent / "workbench"


def create_app(runtime: Runtime, *, manage: bool = True, work: bool = True) -> FastAPI:
    """Build the app. With `manage`, the app's lifespan starts and stops the runtime
    (`work` says whether this process also runs event handlers and cron)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await runtime.start(work=work, cron=work, wait=True)
        try:
            yield
        finally:
            if manage:
                await runtime.stop()

    app = FastAPI(title="Stepline", version="0.1.0", lifespan=lifespan,
                  description="API steps of this Stepline app.")
    app.state.settings = runtime.settings
    app.state.runtime = runtime

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request",
                             "detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(BackendError)
    async def backend_down(_: Request, exc: BackendError) -> JSONResponse:
        log.error("backend error: %s", exc)
        return JSONResponse({"error": f"the {runtime.backend.name} backend is unavailable; "
                             "retry later"}, status_code=503)

    @app.get("/healthz", tags=["stepline"], summary="200 while the backend answers, else 503")
    async def healthz() -> JSONResponse:
        if await runtime.backend.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "backend": runtime.backend.name},
                            status_code=503)

    add_api_steps(app, runtime)  # first: the hot routes are matched before the admin ones
    app.include_router(streams_router(runtime.backend))
    app.include_router(admin_router(runtime))
    if (WORKBENCH / "routes.py").exists():
        from app.workbench.routes import workbench_router

        app.include_router(workbench_router())
    app.add_middleware(BodyLimit, limit=runtime.settings.body_limit)
    return app
