"""Limits at the edge, as ASGI middleware: bodies over the configured size get 413 before they
are read whole (chunked ones too), and JSON bodies of the `/_stepline` API go through the same
parser as API steps, so malformed or hostile JSON is a 400 with the reason there as well."""

from __future__ import annotations

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.body import BadBody, parse_json

__all__ = ["AdminJson", "BodyLimit", "too_large"]


async def _answer(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def too_large(limit: int) -> str:
    """The reason a body over `limit` bytes is refused (413)."""
    return f"request body is larger than {limit} bytes (raise STEPLINE_BODY_LIMIT to accept it)"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0
        over = False
        started = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            # A framework that turns our exception into its own error (FastAPI answers 400
            # for any failure while reading a body) is not heard: the answer is ours.
            if over and not started:
                return
            started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited, sending)
        if over and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await _answer(send, 413, too_large(self.limit))


class _TooLarge(Exception):
    pass


class AdminJson:
    """Parses the body of `/_stepline` writes with the API steps' parser, then hands the same
    bytes on, so the routes' models only ever see JSON that can be stored."""

    def __init__(self, app: ASGIApp, prefix: str = "/_stepline/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw.strip():
            try:
                parse_json(raw)
            except BadBody as exc:
                await _answer(send, 400, f"request body is not valid JSON: {exc}")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
