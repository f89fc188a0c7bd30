"""`/workbench`: the page, its static files, and the token login used in `start` mode."""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from app.server.guard import (
    COOKIE,
    admin_guard,
    client_of,
    refuse_if_throttled,
    same_site,
    sessions,
    throttle,
)
from app.settings import Settings
from app.workbench.api import step_detail_router
from app.workbench.pages import SECURITY_HEADERS, login_page, refusal_page

__all__ = ["workbench_router"]

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_OFF_REASON = (
    "The Workbench is off in `start` mode: set STEPLINE_WORKBENCH_TOKEN to turn it "
    "on, then sign in with that token."
)
# A wrong token costs the guesser this long; a person retyping does not notice.
_WRONG_TOKEN_DELAY = 0.5


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _gate(request: Request) -> Response | None:
    """None when the caller may see the Workbench, else the page to show instead."""
    try:
        admin_guard(request)
    except HTTPException as exc:
        settings: Settings = request.app.state.settings
        if exc.status_code == 401:
            return _html(login_page(), 401)
        if settings.workbench_token is None and settings.mode.production:
            return _html(refusal_page(_OFF_REASON), 403)
        return _html(refusal_page(str(exc.detail)), exc.status_code)
    return None


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip().lower() == "https"


def workbench_router() -> APIRouter:
    router = APIRouter(prefix="/workbench", include_in_schema=False)

    @router.get("")
    @router.get("/")
    async def page(request: Request) -> Response:
        blocked = _gate(request)
        if blocked is not None:
            return blocked
        return FileResponse(
            STATIC / "index.html", headers=SECURITY_HEADERS, media_type=_TYPES[".html"]
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        if not same_site(request, settings):
            return _html(
                refusal_page("request refused: its Host or Origin is not this server's"), 403
            )
        expected = settings.workbench_token
        if expected is None:
            if not settings.mode.production:
                return RedirectResponse("/workbench", status_code=303)
            return _html(refusal_page(_OFF_REASON), 403)
        try:
            refuse_if_throttled(request)
        except HTTPException as exc:
            return _html(login_page(str(exc.detail)), 429)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            throttle(request).failed(client_of(request), "sign-in form")
            await asyncio.sleep(_WRONG_TOKEN_DELAY)
            return _html(
                login_page(
                    "That token is not right. Check STEPLINE_WORKBENCH_TOKEN on the server."
                ),
                401,
            )
        response = RedirectResponse("/workbench", status_code=303)
        # The cookie names a session of this server, revoked at sign-out: a stolen cookie
        # is not the token, and signing out ends it.
        response.set_cookie(
            COOKIE,
            sessions(request).create(),
            httponly=True,
            samesite="strict",
            path="/",
            secure=_secure(request),
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        if not same_site(request, request.app.state.settings):
            return _html(
                refusal_page("request refused: its Host or Origin is not this server's"), 403
            )
        sessions(request).revoke(request.cookies.get(COOKIE) or "")
        response = RedirectResponse("/workbench", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get("/static/{name:path}")
    async def static(name: str) -> Response:
        # Static files hold no data, only code that is in the repository anyway.
        if "\x00" in name:
            raise HTTPException(404, "no Workbench file with a NUL character in its name")
        path = (STATIC / name).resolve()
        if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in _TYPES:
            raise HTTPException(404, f"no Workbench file {name!r}")
        return FileResponse(
            path,
            media_type=_TYPES[path.suffix],
            headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
        )

    router.include_router(step_detail_router())
    return router
