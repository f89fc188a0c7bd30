"""Who may use the Workbench and `/_stepline`: same-origin requests, and in `start` mode only
holders of STEPLINE_WORKBENCH_TOKEN (cookie or bearer header)."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from app.settings import Settings

__all__ = ["COOKIE", "AdminGuard", "admin_guard", "same_site", "token_ok"]

COOKIE = "stepline_token"
_LOCAL = {"localhost", "127.0.0.1", "::1", "[::1]", "testserver", "stepline.test"}


def _host_ok(request: Request, settings: Settings) -> bool:
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].lower()
    allowed = _LOCAL | {settings.host.lower()} | {settings.public_host.lower()}
    if _all_interfaces(settings):
        # Bound to every interface: the token (required in `start`) is the protection.
        return True
    return host in allowed


def _all_interfaces(settings: Settings) -> bool:
    return settings.host in ("0.0.0.0", "::", "")


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    return urlsplit(origin).netloc.lower() == (request.headers.get("host") or "").lower()


def token_ok(request: Request, settings: Settings) -> bool:
    expected = settings.workbench_token
    if expected is None:
        # Open without a token only in dev on a loopback address: `dev --host 0.0.0.0` would
        # otherwise hand state, emits and replays to the whole network.
        return settings.mode in ("dev", "cli") and not _all_interfaces(settings)
    given = request.cookies.get(COOKIE) or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def same_site(request: Request, settings: Settings) -> bool:
    """Host and Origin are this server's (DNS rebinding, cross-site forms)."""
    return _host_ok(request, settings) and _origin_ok(request)


def admin_guard(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if not same_site(request, settings):
        raise HTTPException(403, "request refused: its Host or Origin is not this server's")
    if not token_ok(request, settings):
        if settings.workbench_token is None:
            where = ("on every interface" if _all_interfaces(settings)
                     else "in `start` mode")
            raise HTTPException(403, f"the Workbench is off {where}; set "
                                "STEPLINE_WORKBENCH_TOKEN to turn it on")
        raise HTTPException(401, "missing or wrong Workbench token",
                            headers={"www-authenticate": "Bearer"})


AdminGuard = Annotated[None, Depends(admin_guard)]
