"""What an operator reads over HTTP besides health: `GET /metrics` (Prometheus text, behind
the Workbench token like the admin API), and the API docs (`/docs`, `/redoc`) served from files
shipped in the package, so they work without internet.

The docs assets are swagger-ui-dist 5.35.0 (Apache-2.0) and redoc 2.5.4 (MIT) from npm, kept
unmodified in `docs_static/` with their licence files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.runtime import Runtime
from app.server.guard import AdminGuard

__all__ = ["DOCS_STATIC", "add_ops_routes"]

DOCS_STATIC = Path(__file__).resolve().parent / "docs_static"
_ASSETS = "/docs/static"


def add_ops_routes(app: FastAPI, runtime: Runtime) -> None:
    """Mount /metrics (when STEPLINE_METRICS is on), /docs and /redoc. Build the FastAPI app
    with `docs_url=None, redoc_url=None` so these replace its CDN-loading pages."""
    router = APIRouter(tags=["stepline"])

    if runtime.settings.metrics:

        @router.get("/metrics", summary="Prometheus metrics (stepline_*)", response_class=Response)
        async def metrics(_: AdminGuard) -> Response:
            from app.metrics import CONTENT_TYPE_LATEST, render

            return Response(await render(runtime.backend), media_type=CONTENT_TYPE_LATEST)

    @router.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png",
        )

    @router.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{_ASSETS}/favicon-32x32.png",
            with_google_fonts=False,
        )

    app.include_router(router)
    app.mount(_ASSETS, StaticFiles(directory=DOCS_STATIC), name="docs-static")
