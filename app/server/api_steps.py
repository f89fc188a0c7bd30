"""Routes for API steps: parse and validate the body, run the handler through the runtime's one
run path (`app.run.Runner`), which commits its emits durably, then answer."""

from __future__ import annotations

import json
import logging
import math
from enum import Enum
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse

from app.http import Request, Response
from app.redact import redact_text
from app.registry import Step
from app.retries import Permanent, Retry
from app.runtime import Runtime
from app.server.body import json_bytes, parse_json, trace_id_for
from app.state import jsonable
from app.step_config import ApiConfig
from app.writer import UnstorableWrite

__all__ = ["add_api_steps"]

log = logging.getLogger("stepline.server")


def add_api_steps(app: FastAPI, runtime: Runtime) -> None:
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
        app.add_api_route(
            config.path,
            _endpoint(step, runtime),
            methods=[config.method],
            name=config.name,
            summary=config.name,
            description=config.description or None,
            tags=list[str | Enum](config.flows or ["default"]),
            openapi_extra=extra or None,
            responses=responses or None,
        )


def _error(status: int, message: str, trace_id: str, **more: Any) -> JSONResponse:
    return JSONResponse(
        {"error": message, **more}, status_code=status, headers={"x-trace-id": trace_id}
    )


def _endpoint(step: Step, runtime: Runtime) -> Any:
    config = step.config
    assert isinstance(config, ApiConfig)

    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        trace_id = trace_id_for(request.headers, dev=runtime.settings.mode == "dev")
        raw = await request.body()
        body: Any = None
        if raw:
            strict = _is_json(request.headers.get("content-type", ""), config.body is not None)
            try:
                body = parse_json(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                # Only a body that claims to be JSON (or must be) is an error; any other
                # body stays available as `req.raw`.
                if strict:
                    return _error(400, f"request body is not valid JSON: {exc}", trace_id)
            except RecursionError:
                return _error(400, "request body is nested too deeply to parse", trace_id)
        if config.body is not None:
            try:
                body = config.body.model_validate(body)
            except ValidationError as exc:
                return _error(
                    422,
                    "request body does not match the expected schema",
                    trace_id,
                    detail=jsonable(exc.errors(include_url=False, include_input=False)),
                )
        req = Request(
            request.method,
            request.url.path,
            dict(request.path_params),
            dict(request.query_params),
            request.headers,
            raw,
            body,
        )
        try:
            run = await runtime.runner.run_request(
                step, req, trace_id, lambda result: _to_response(result, config)
            )
        except UnstorableWrite as exc:
            # The handler's own emits are the problem, not the store: a bug to fix, not retry.
            return _error(
                500,
                f"the handler of {config.name} emitted what cannot be stored: "
                f"{exc}; nothing was accepted",
                trace_id,
            )
        except Exception as exc:
            log.error("could not store the emits of %s: %s", config.name, exc)
            return _error(
                503, "the event store is unavailable; nothing was accepted, retry later", trace_id
            )
        if isinstance(run.error, Retry):
            delay = run.error.delay if run.error.delay is not None else runtime.settings.retry_base
            response: StarletteResponse = _error(
                503, f"{config.name} asks to retry later: {redact_text(run.error.reason)}", trace_id
            )
            response.headers["retry-after"] = str(max(1, math.ceil(delay)))
        elif isinstance(run.error, Permanent):
            # The request cannot succeed as sent (a handler or middleware refused it): the
            # client's to fix, not a server failure, and retrying it will not help.
            response = _error(
                422, f"{config.name} refused the request: {redact_text(run.error.reason)}", trace_id
            )
        elif run.error is not None:
            response = _error(
                500, f"the handler of {config.name} failed; see trace {trace_id}", trace_id
            )
        else:
            response = run.result
        response.headers["x-trace-id"] = trace_id
        return response

    return endpoint


def _is_json(content_type: str, declared: bool) -> bool:
    # With a declared body model the body must be JSON whatever the client labelled it.
    kind = content_type.split(";")[0].strip().lower()
    return declared or kind == "application/json" or kind.endswith("+json")


def _to_response(result: Any, config: ApiConfig) -> StarletteResponse:
    if isinstance(result, StarletteResponse):
        return result
    status, body, headers = 200, result, {}
    if isinstance(result, Response):
        status, body, headers = result.status, result.body, dict(result.headers)
    elif (
        isinstance(result, dict)
        and isinstance(result.get("status"), int)
        and set(result) <= {"status", "body", "headers"}
    ):
        status, body, headers = result["status"], result.get("body"), result.get("headers") or {}
    if config.response is not None and status < 300 and not isinstance(body, BaseModel):
        body = config.response.model_validate(body)
    if isinstance(body, bytes | str) and "content-type" in {k.lower() for k in headers}:
        return StarletteResponse(body, status_code=status, headers=headers)
    if body is None and status in (204, 304):
        return StarletteResponse(status_code=status, headers=headers)
    return StarletteResponse(
        json_bytes(jsonable(body, "response body")),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )
