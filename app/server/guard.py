"""Who may use the Workbench, `/_stepline` and `/streams`: same-origin requests, and in
`start` mode only holders of STEPLINE_WORKBENCH_TOKEN: scripts send it as a bearer header, a
browser signs in once and then carries a session id in its cookie (never the token itself),
which signing out revokes. Wrong tokens are logged and throttled per client."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import OrderedDict, deque
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from app.settings import Settings

__all__ = [
    "COOKIE",
    "AdminGuard",
    "Sessions",
    "Throttle",
    "admin_guard",
    "client_of",
    "refuse_if_throttled",
    "same_site",
    "sessions",
    "throttle",
    "token_ok",
]

log = logging.getLogger("stepline.server")

COOKIE = "stepline_session"
SESSION_SECONDS = 7 * 24 * 3600.0
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


class Sessions:
    """Signed-in browsers of this process: session id -> expiry. A restart signs them out."""

    def __init__(self, limit: int = 1000) -> None:
        self._live: OrderedDict[str, float] = OrderedDict()
        self._limit = limit

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        self._live[sid] = time.time() + SESSION_SECONDS
        while len(self._live) > self._limit:
            self._live.popitem(last=False)  # the oldest sign-in goes first
        return sid

    def valid(self, sid: str) -> bool:
        expires = self._live.get(sid)
        if expires is None:
            return False
        if expires < time.time():
            del self._live[sid]
            return False
        return True

    def revoke(self, sid: str) -> None:
        self._live.pop(sid, None)


class Throttle:
    """Wrong tokens per client: after `limit` within `window` seconds, that client is refused
    (429) until the oldest of them is `window` old, whatever it sends."""

    def __init__(self, limit: int = 10, window: float = 60.0, clients: int = 10_000) -> None:
        self.limit, self.window, self._clients = limit, window, clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client) or deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def wait(self, client: str) -> float:
        """Seconds before `client` may try again; 0 when it may now."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - now)

    def failed(self, client: str, where: str) -> None:
        now = time.monotonic()
        failures = self._recent(client, now)
        failures.append(now)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self._clients:
            self._failures.popitem(last=False)
        log.warning(
            "wrong Workbench token from %s (%s; %d in the last %.0f s)",
            client,
            where,
            len(failures),
            self.window,
        )


def sessions(request: Request) -> Sessions:
    """The app's sign-in sessions (one store per app, made on first use)."""
    return _per_app(request, Sessions)


def throttle(request: Request) -> Throttle:
    """The app's count of wrong tokens per client."""
    return _per_app(request, Throttle)


T = TypeVar("T")


def _per_app(request: Request, kind: type[T]) -> T:
    state = request.app.state
    name = f"guard_{kind.__name__.lower()}"
    if not hasattr(state, name):
        setattr(state, name, kind())
    found: T = getattr(state, name)
    return found


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def token_ok(request: Request, settings: Settings) -> bool:
    expected = settings.workbench_token
    if expected is None:
        # Open without a token only in dev on a loopback address: `dev --host 0.0.0.0` would
        # otherwise hand state, emits and replays to the whole network.
        return not settings.mode.production and not _all_interfaces(settings)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
        if hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            return True
        throttle(request).failed(client_of(request), f"bearer header on {request.url.path}")
        return False
    # A stale session id (signed out, or from before a restart) is not a guess: no throttle.
    return sessions(request).valid(request.cookies.get(COOKIE) or "")


def same_site(request: Request, settings: Settings) -> bool:
    """Host and Origin are this server's (DNS rebinding, cross-site forms)."""
    return _host_ok(request, settings) and _origin_ok(request)


def refuse_if_throttled(request: Request) -> None:
    wait = throttle(request).wait(client_of(request))
    if wait > 0:
        raise HTTPException(
            429,
            f"too many wrong Workbench tokens from this client; try again in {wait:.0f} s",
            headers={"retry-after": str(int(wait) + 1)},
        )


def admin_guard(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if not same_site(request, settings):
        raise HTTPException(403, "request refused: its Host or Origin is not this server's")
    refuse_if_throttled(request)
    if not token_ok(request, settings):
        if settings.workbench_token is None:
            where = "on every interface" if _all_interfaces(settings) else "in `start` mode"
            raise HTTPException(
                403, f"the Workbench is off {where}; set STEPLINE_WORKBENCH_TOKEN to turn it on"
            )
        raise HTTPException(
            401, "missing or wrong Workbench token", headers={"www-authenticate": "Bearer"}
        )


AdminGuard = Annotated[None, Depends(admin_guard)]
