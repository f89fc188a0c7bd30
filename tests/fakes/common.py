"""Run a fake HTTP service on a loopback port in a background thread.

Fakes stand in for GitHub, Gmail, Slack, OpenAI and the push services. Each one is a
`FakeService` subclass that registers routes; tests point the real client library at
`server.url` and inspect `service.requests` afterwards.

    class Hello(FakeService):
        def __init__(self) -> None:
            super().__init__()
            self.route("GET", r"/hello/(?P<name>\\w+)", self.hello)

        def hello(self, req: FakeRequest, name: str) -> Reply:
            return Reply.json({"hi": name})

    with serve(Hello()) as base_url:
        httpx.get(f"{base_url}/hello/ann")

Failures are scripted per route with `service.inject(...)`, so a test can say "the next
two calls to /v1/chat/completions answer 429" without the fake knowing about the test.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FakeRequest",
    "FakeService",
    "LoopbackServer",
    "Reply",
    "serve",
]


@dataclass
class FakeRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    # time.monotonic() on arrival: lets a test check a client waited at least the advised delay
    received_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """The url-encoded body, one value per key (the last one wins)."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[-1] for key, values in parsed.items()}

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Reply:
    """What the fake answers: status, headers and a body of bytes."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(data).encode("utf-8"), merged)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        merged = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status, text.encode("utf-8"), merged)


Handler = Callable[..., Reply]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


@dataclass
class _Injection:
    method: str | None
    pattern: re.Pattern[str]
    replies: list[Reply]


class FakeService:
    """Routes requests to handlers, records them, and plays scripted failures first.

    Handlers run on the server's threads; `self.lock` guards any state a subclass keeps.
    """

    def __init__(self) -> None:
        self.requests: list[FakeRequest] = []
        self.lock = threading.RLock()
        self._routes: list[_Route] = []
        self._injections: list[_Injection] = []

    def route(self, method: str, path_regex: str, handler: Handler) -> None:
        """Send `method path` (full match) to `handler(req, **named_groups)`."""
        self._routes.append(_Route(method.upper(), re.compile(path_regex), handler))

    def inject(self, path_regex: str, *replies: Reply, method: str | None = None) -> None:
        """Answer the next matching requests with `replies`, in order, before the routes."""
        pattern = re.compile(path_regex)
        with self.lock:
            self._injections.append(_Injection(method and method.upper(), pattern, list(replies)))

    def calls(self, path_regex: str, method: str | None = None) -> list[FakeRequest]:
        """Recorded requests whose path fully matches `path_regex`."""
        pattern = re.compile(path_regex)
        with self.lock:
            return [
                r
                for r in self.requests
                if pattern.fullmatch(r.path) and (method is None or r.method == method.upper())
            ]

    def __call__(self, req: FakeRequest) -> Reply:
        with self.lock:
            self.requests.append(req)
            scripted = self._take_injection(req)
        if scripted is not None:
            return scripted
        allowed = False
        for route in self._routes:
            match = route.pattern.fullmatch(req.path)
            if match is None:
                continue
            if route.method != req.method:
                allowed = True
                continue
            return route.handler(req, **match.groupdict())
        if allowed:
            return Reply.json({"message": "Method Not Allowed"}, status=405)
        return self.not_found(req)

    def not_found(self, req: FakeRequest) -> Reply:
        """What an unknown path answers; services override it to match their error body."""
        return Reply.json({"message": "Not Found", "path": req.path}, status=404)

    def _take_injection(self, req: FakeRequest) -> Reply | None:
        for injection in self._injections:
            if injection.method not in (None, req.method):
                continue
            if injection.pattern.fullmatch(req.path) and injection.replies:
                return injection.replies.pop(0)
        return None


App = Callable[[FakeRequest], Reply]


def _make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        # Keep-alive like real APIs; every reply carries Content-Length so clients can reuse it.
        protocol_version = "HTTP/1.1"

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            req = FakeRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self._read_body(),
            )
            try:
                reply = app(req)
            except Exception as exc:  # a bug in a fake must show up as a 500, not a hang
                reply = Reply.json({"message": f"fake server error: {exc!r}"}, status=500)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD" and reply.body:
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read `service.requests`; access logs would only add noise

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not stall shutdown


class LoopbackServer:
    """Serves `app` on 127.0.0.1 at a free port until `close()`; also a context manager."""

    def __init__(self, app: App, host: str = "127.0.0.1") -> None:
        self.app = app
        self._httpd = _Server((host, 0), _make_handler(app))
        port = self._httpd.server_address[1]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-http-{port}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def serve(app: App) -> Iterator[str]:
    """Serve `app` for the duration of the block and yield its base URL (no trailing slash)."""
    server = LoopbackServer(app)
    try:
        yield server.url
    finally:
        server.close()
