"""One API step as a plain ASGI endpoint: read the body within the limit, parse and validate
it, run the handler through the runtime's one run path (`app.run.Runner`), which commits its
emits durably, then answer.

Plain ASGI (not a Starlette endpoint) because this is the webhook path: `SteplineApp` hands it
a matching request before FastAPI's middleware, router and dependency machinery, which cost
more per request than the HMAC check and the durable emit together. So it does itself what
those layers would: the body limit (413), JSON errors (400), the schema check (422), and a 500
for anything unexpected. The FastAPI route registered for the same step (for OpenAPI, and for
requests the fast dispatch does not take) answers through this same object.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response as StarletteResponse
from starlette.types import Receive, Scope, Send

from app.http import Request, Response
from app.redact import redact_text
from app.registry import Step
from app.retries import Permanent, Retry
from app.runtime import Runtime
from app.server.body import parse_json, response_json, trace_id_for
from app.server.limits import too_large
from app.state import jsonable
from app.step_config import ApiConfig
from app.writer import UnstorableWrite

__all__ = ["StepEndpoint"]

log = logging.getLogger("stepline.server")

_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_OOPS = b"Internal Server Error"
_TRACING = (b"traceparent", b"x-trace-id")
_START = "http.response.start"
_BODY = "http.response.body"


class _Gone(Exception):
    """The client disconnected before its body was read: there is no one to answer."""


class StepEndpoint:
    """Serves one API step over ASGI."""

    __slots__ = ("config", "dev", "limit", "name", "runner", "step")

    def __init__(self, step: Step, runtime: Runtime) -> None:
        assert isinstance(step.config, ApiConfig)
        self.step = step
        self.config: ApiConfig = step.config
        self.name = step.config.name
        self.runner = runtime.runner
        self.limit = runtime.settings.body_limit
        self.dev = runtime.settings.mode == "dev"

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str | None = None,
        path_params: dict[str, str] | None = None,
    ) -> None:
        try:
            answer = await self._answer(scope, receive, path, path_params)
        except _Gone:
            return
        except Exception:
            # As Starlette's ServerErrorMiddleware: a bare 500, and the server logs the error.
            await _send(send, 500, _OOPS, [(b"content-length", b"%d" % len(_OOPS)), _type(_TEXT)])
            raise
        if isinstance(answer, StarletteResponse):
            await answer(scope, receive, send)
        else:
            await _send(send, *answer)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        path: str | None,
        path_params: dict[str, str] | None,
    ) -> StarletteResponse | tuple[int, bytes, list[tuple[bytes, bytes]]]:
        length, kind, tracing = _read_headers(scope["headers"])
        limit = self.limit
        if length is not None and length.isdigit() and int(length) > limit:
            return _refuse(limit)
        raw = await _read(receive, limit)
        if raw is None:
            return _refuse(limit)
        trace_id = trace_id_for(tracing, dev=self.dev)
        config = self.config
        body: Any = None
        if raw:
            try:
                body = parse_json(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                # Only a body that claims to be JSON (or must be) is an error; any other
                # body stays available as `req.raw`.
                if _is_json(kind, config.body is not None):
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
        query = scope.get("query_string", b"")
        req = Request(
            scope["method"],
            _url_path(scope["path"]) if path is None else path,
            {} if path_params is None else dict(path_params),
            dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {},
            Headers(scope=scope),
            raw,
            body,
        )
        try:
            run = await self.runner.run_request(self.step, req, trace_id, self._finish)
        except UnstorableWrite as exc:
            # The handler's own emits are the problem, not the store: a bug to fix, not retry.
            return _error(
                500,
                f"the handler of {self.name} emitted what cannot be stored: "
                f"{exc}; nothing was accepted",
                trace_id,
            )
        except Exception as exc:
            log.error("could not store the emits of %s: %s", self.name, exc)
            return _error(
                503, "the event store is unavailable; nothing was accepted, retry later", trace_id
            )
        error = run.error
        if error is None:
            answer = run.result
            if isinstance(answer, StarletteResponse):
                answer.headers["x-trace-id"] = trace_id
            else:
                answer[2].append((b"x-trace-id", trace_id.encode()))
            return answer
        if isinstance(error, Retry):
            delay = error.delay if error.delay is not None else self.runner.settings.retry_base
            refused = _error(
                503, f"{self.name} asks to retry later: {redact_text(error.reason)}", trace_id
            )
            refused[2].append((b"retry-after", str(max(1, math.ceil(delay))).encode()))
            return refused
        if isinstance(error, Permanent):
            # The request cannot succeed as sent (a handler or middleware refused it): the
            # client's to fix, not a server failure, and retrying it will not help.
            return _error(
                422, f"{self.name} refused the request: {redact_text(error.reason)}", trace_id
            )
        return _error(500, f"the handler of {self.name} failed; see trace {trace_id}", trace_id)

    def _finish(self, result: Any) -> StarletteResponse | tuple[int, bytes, list[Any]]:
        """The handler's result as an answer (run inside the run: a failure here is the
        handler's failure, e.g. a body the response model refuses)."""
        if isinstance(result, StarletteResponse):
            return result
        config = self.config
        status, body, headers = 200, result, None
        if isinstance(result, Response):
            status, body, headers = result.status, result.body, dict(result.headers)
        elif (
            isinstance(result, dict)
            and isinstance(result.get("status"), int)
            and set(result) <= {"status", "body", "headers"}
        ):
            status, body, headers = result["status"], result.get("body"), result.get("headers")
        if config.response is not None and status < 300 and not isinstance(body, BaseModel):
            body = config.response.model_validate(body)
        if headers:
            # The handler's own headers: Starlette encodes and completes them.
            if isinstance(body, bytes | str) and "content-type" in {k.lower() for k in headers}:
                return StarletteResponse(body, status_code=status, headers=headers)
            if body is None and status in (204, 304):
                return StarletteResponse(status_code=status, headers=headers)
            return StarletteResponse(
                response_json(body),
                status_code=status,
                headers=headers,
                media_type="application/json",
            )
        if body is None and status in (204, 304):
            return status, b"", []
        payload = response_json(body)
        return status, payload, _json_head(status, payload)


def _read_headers(raw: list[tuple[bytes, bytes]]) -> tuple[bytes | None, str, dict[str, str]]:
    """Content-Length, Content-Type and the trace headers, in one pass (the first of each;
    ASGI servers send header names in lower case)."""
    length: bytes | None = None
    kind: str | None = None
    tracing: dict[str, str] = {}
    for name, value in raw:
        if name == b"content-length":
            if length is None:
                length = value
        elif name == b"content-type":
            if kind is None:
                kind = value.decode("latin-1")
        elif name in _TRACING:
            tracing.setdefault(name.decode(), value.decode("latin-1"))
    return length, kind or "", tracing


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` (chunked bodies are counted as read)."""
    message = await receive()
    if message["type"] != "http.request":
        raise _Gone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return None if len(body) > limit else body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _url_path(path: str) -> str:
    # As Starlette's request.url.path, which the FastAPI route of the step passes (and every
    # step got before the fast dispatch): a decoded '?', '#' or backslash is escaped again.
    if "?" in path or "#" in path or "\\" in path:
        return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    return path


def _type(value: bytes) -> tuple[bytes, bytes]:
    return (b"content-type", value)


def _json_head(status: int, payload: bytes) -> list[tuple[bytes, bytes]]:
    if status < 200 or status in (204, 304):
        return [_type(_JSON)]
    return [(b"content-length", str(len(payload)).encode()), _type(_JSON)]


def _error(
    status: int, message: str, trace_id: str, **more: Any
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    payload = json.dumps(
        {"error": message, **more}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()
    return status, payload, [(b"x-trace-id", trace_id.encode()), *_json_head(status, payload)]


def _refuse(limit: int) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    payload = json.dumps({"error": too_large(limit)}).encode()
    return 413, payload, _json_head(413, payload)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": _START, "status": status, "headers": headers})
    await send({"type": _BODY, "body": body})


def _is_json(content_type: str, declared: bool) -> bool:
    # With a declared body model the body must be JSON whatever the client labelled it.
    kind = content_type.split(";")[0].strip().lower()
    return declared or kind == "application/json" or kind.endswith("+json")
