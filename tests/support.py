"""Small helpers shared by the test packages."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["free_port", "until", "write_steps"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_steps(directory: Path, files: dict[str, str]) -> Path:
    """Write step sources (dedented) under `directory`; names may contain sub-folders."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return directory


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something true; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
