"""What the tests against the shared Redis on 127.0.0.1:6379 have in common: its URL, the marks
that skip them when it is not running, and fresh key prefixes (that Redis is never reset)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from app.types import Message

if TYPE_CHECKING:  # conftest imports this module even where the Redis backend is absent
    from app.backends.redis import RedisBackend

__all__ = ["REDIS_MARKS", "URL", "MakeBackend", "msg", "new_prefix", "redis_up"]

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


def msg(i: int, steps: tuple[str, ...] = ("A",), key: str | None = None) -> Message:
    """Event number `i` on "topic", in its own trace."""
    return Message("topic", {"i": i}, f"trace-{i}", steps, key)
