"""The HTTP protocol `stepline start` and `dev` serve with: uvicorn's httptools protocol, each
response written to the socket once.

uvicorn writes a response's status line and headers when the app sends `http.response.start`
and its body at `http.response.body`: two `send()` system calls for every webhook answer, each
waking the client; on loopback under wrk that was a third of the server's busy time. Here the
headers wait for the first body write (or the end of the loop iteration, so a streaming
response such as SSE still shows its headers at once) and go out with it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["OneWriteHttpTools"]

_JOIN_BELOW = 64 * 1024


class _OneWrite:
    """A transport that joins a write with the one right after it (same loop iteration)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            if len(data) > _JOIN_BELOW:  # not worth a copy of a large body
                self._transport.write(held)
                self._transport.write(data)
            else:
                self._transport.write(held + data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `_OneWrite` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWrite(transport, self.loop))  # type: ignore[arg-type]
