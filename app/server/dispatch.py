"""`SteplineApp`: the FastAPI app with API-step requests dispatched before FastAPI.

A webhook delivery is the hot request of a Stepline server. Through FastAPI it passes seven
middleware layers, a router that tries route after route, dependency solving and a Starlette
Request and Response: more CPU per request, measured under wrk, than its HMAC check and its
durable emit. So a request whose method and path belong to an API step goes straight to that
step's `StepEndpoint`, which does the body limit, parsing and error answers itself; everything
else (health, admin, Workbench, docs, OpenAPI, a 404 or 405) goes through FastAPI as before.

The dispatch picks exactly the route FastAPI's router would: step routes are registered right
after the health routes, a path an earlier route also matches is left to the router, and
templated paths are tried in registration order. It stands aside when FastAPI's own
OpenTelemetry instrumentation is on (so its HTTP spans cover step routes too), under a root
path, and once ASGI middleware other than Stepline's own is added to the app (CORS, an
OpenTelemetry instrumentor, a user's own): those must see step requests as they did through
FastAPI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from app.server.step_endpoint import StepEndpoint

__all__ = ["SteplineApp"]

_Converters = dict[str, Any]


class SteplineApp(FastAPI):
    """FastAPI, with `hot_steps` answering their requests before its middleware and router."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._static: dict[tuple[str, str], StepEndpoint] = {}
        self._templated: list[tuple[str, re.Pattern[str], _Converters, StepEndpoint]] = []
        self._earlier: frozenset[str] = frozenset()
        self._telemetry_checked = float("-inf")
        self._telemetry_enabled = False
        self._own_middleware = 0

    def hot_steps(self, endpoints: Sequence[StepEndpoint], earlier: Iterable[str]) -> None:
        """Dispatch `endpoints` (in their route order) directly; `earlier` are the static
        paths of the routes registered before them, which keep their precedence."""
        self._earlier = frozenset(earlier)
        static: dict[tuple[str, str], StepEndpoint] = {}
        ordered: list[tuple[str, re.Pattern[str], _Converters, StepEndpoint]] = []
        for endpoint in endpoints:
            config = endpoint.config
            regex, _, converters = compile_path(config.path)
            key = (config.method, config.path)
            shadowed = config.path in self._earlier or any(
                method == config.method and pattern.match(config.path)
                for method, pattern, _, _ in ordered
            )
            if not converters and not shadowed and key not in static:
                static[key] = endpoint
            if converters:
                ordered.append((config.method, regex, converters, endpoint))
        self._static = static
        self._templated = ordered

    def own_middleware_added(self) -> None:
        """Mark the middleware added so far as Stepline's own, which step endpoints do
        without; any added later (by the app's user) keeps step requests on FastAPI's way."""
        self._own_middleware = len(self.user_middleware)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not scope.get("root_path")
            and not self.root_path
            and len(self.user_middleware) == self._own_middleware
            # opentelemetry-instrumentation-fastapi wraps the stack builder of the instance.
            and "build_middleware_stack" not in self.__dict__
        ):
            endpoint = self._static.get((scope["method"], scope["path"]))
            if endpoint is not None and not self._telemetry_on():
                await endpoint(scope, receive, send)
                return
            if self._templated and endpoint is None:
                found = self._match(scope["method"], scope["path"])
                if found is not None and not self._telemetry_on():
                    await found[0](scope, receive, send, None, found[1])
                    return
        await super().__call__(scope, receive, send)

    def _telemetry_on(self) -> bool:
        # FastAPI's check reads the environment and three providers: once a second is enough
        # to notice a provider set after start-up.
        now = time.monotonic()
        if now - self._telemetry_checked >= 1.0:
            self._telemetry_checked = now
            self._telemetry_enabled = self._native_telemetry.enabled()
        return self._telemetry_enabled

    def _match(self, method: str, path: str) -> tuple[StepEndpoint, dict[str, Any]] | None:
        if path in self._earlier:
            return None
        for wanted, regex, converters, endpoint in self._templated:
            if wanted != method:
                continue
            found = regex.match(path)
            if found is not None:
                params = {k: converters[k].convert(v) for k, v in found.groupdict().items()}
                return endpoint, params
        return None
