"""The HTTP protocol of `stepline start` (app/server/transport.py) writes a response once, and
a streaming response still shows its headers before its first chunk, then each chunk as sent."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.server.transport import OneWriteHttpTools
from tests.support import free_port

released = asyncio.Event()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await released.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b'{"ok":true}' * (10_000 if scope["path"] == "/big" else 1)
    length = str(len(body)).encode()
    await send(
        {"type": "http.response.start", "status": 202, "headers": [(b"content-length", length)]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(
        app, port=free_port(), http=OneWriteHttpTools, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start within 4 s"
    yield config.port
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def _read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, f"connection closed before {marker!r}; got {data!r}"
        data += chunk
    return data


async def test_answers_arrive_whole_on_a_kept_alive_connection(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path, size in (("/hook", 11), ("/big", 110_000), ("/hook", 11)):
        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        head = await _read_until(reader, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 202 ")
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < size:
            body += await asyncio.wait_for(reader.read(65536), 5)
        assert body == b'{"ok":true}' * (size // 11)
    writer.close()


async def test_a_stream_shows_its_headers_before_its_first_chunk(port):
    released.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
    head = await _read_until(reader, b"\r\n\r\n")  # while the app still waits
    assert head.startswith(b"HTTP/1.1 200 ") and b"text/event-stream" in head
    released.set()
    assert b"data: 1" in await _read_until(reader, b"data: 1")
    writer.close()


def test_without_httptools_the_server_falls_back_to_uvicorns_choice(monkeypatch):
    from app.cli import http_protocol

    assert http_protocol() is OneWriteHttpTools
    assert http_protocol(by_name=True) == "app.server.transport:OneWriteHttpTools"
    # httptools is an optional part of uvicorn (its [standard] extra): as if not installed.
    monkeypatch.setitem(sys.modules, "httptools", None)
    for module in ("uvicorn.protocols.http.httptools_impl", "app.server.transport"):
        monkeypatch.delitem(sys.modules, module)
    assert http_protocol() == "auto" and http_protocol(by_name=True) == "auto"
    config = uvicorn.Config(app, http=http_protocol(), lifespan="off")
    config.load()
    assert config.http_protocol_class.__name__ == "H11Protocol"
