"""Routes for API steps: each step is a `StepEndpoint` (plain ASGI), registered as a FastAPI
route too, so the OpenAPI document lists it and a request the fast dispatch of
`app.server.dispatch` does not take is still served by the same endpoint."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.types import Receive, Scope, Send

from app.runtime import Runtime
from app.server.step_endpoint import StepEndpoint
from app.step_config import ApiConfig

__all__ = ["add_api_steps"]


def add_api_steps(app: FastAPI, runtime: Runtime) -> list[StepEndpoint]:
    """Register a route for every API step; returns their endpoints, in route order."""
    endpoints = []
    for step in runtime.registry.of_kind("api"):
        config = step.config
        assert isinstance(config, ApiConfig)
        extra: dict[str, Any] = {}
        if config.body is not None:
            extra["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": config.body.model_json_schema()}},
            }
        responses: dict[int | str, dict[str, Any]] = {}
        if config.response is not None:
            responses[200] = {
                "content": {"application/json": {"schema": config.response.model_json_schema()}},
                "description": "OK",
            }
        endpoint = StepEndpoint(step, runtime)
        endpoints.append(endpoint)
        app.add_api_route(
            config.path,
            _route(endpoint),
            methods=[config.method],
            name=config.name,
            summary=config.name,
            description=config.description or None,
            tags=list[str | Enum](config.flows or ["default"]),
            openapi_extra=extra or None,
            responses=responses or None,
        )
    return endpoints


def _route(endpoint: StepEndpoint) -> Any:
    async def route(request: StarletteRequest) -> StarletteResponse:
        # The body is still unread: the endpoint reads it from the ASGI channel itself.
        return _Served(endpoint, request.url.path, dict(request.path_params))

    return route


class _Served(StarletteResponse):
    """The answer of a step reached through FastAPI's router: the endpoint writes it."""

    def __init__(self, endpoint: StepEndpoint, path: str, path_params: dict[str, str]) -> None:
        super().__init__()
        self._endpoint, self._path, self._params = endpoint, path, path_params

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._endpoint(scope, receive, send, self._path, self._params)
