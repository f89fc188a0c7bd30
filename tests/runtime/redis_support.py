"""What the tests against the shared Redis on 127.0.0.1:6379 have in common: its URL, the marks
that skip them when it is not running, and fresh key prefixes (that Redis is never reset)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.types import Delivery, Message

if TYPE_CHECKING:  # conftest imports this module even where the Redis backend is absent
    from app.backends.redis import RedisBackend

__all__ = [
    "REDIS_MARKS",
    "URL",
    "MakeBackend",
    "RedisServer",
    "claim_all",
    "msg",
    "new_prefix",
    "redis_up",
]

URL = "redis://127.0.0.1:6379/0"

# Called with Settings overrides; each call is one more "process" on the same key prefix.
MakeBackend = Callable[..., Awaitable["RedisBackend"]]


def redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


REDIS_MARKS = [
    pytest.mark.redis,
    pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379 (see README)"),
]


def new_prefix() -> str:
    return f"stepline-test-{uuid.uuid4().hex[:12]}"


class RedisServer:
    """A redis-server of the test's own on a free port (`args` add to its configuration),
    for tests that stop, fill or misconfigure Redis; stopped by its pid."""

    def __init__(self, directory: Path, *args: str) -> None:
        from tests.support import free_port

        self.port = free_port()
        self.dir = directory
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


def msg(i: int, steps: tuple[str, ...] = ("A",), key: str | None = None) -> Message:
    """Event number `i` on "topic", in its own trace."""
    return Message("topic", {"i": i}, f"trace-{i}", steps, key)


async def claim_all(backend: RedisBackend, step: str, lease: float = 30.0) -> list[Delivery]:
    """Everything of `step` that is claimable now, as one process would claim it."""
    return await backend.claim({step: 1000}, {step: lease})
