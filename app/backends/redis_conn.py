"""Connecting to Redis, and turning its failures into Stepline's errors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as rx
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from app.errors import BackendError, BackendUnavailable

__all__ = ["connect", "guarded", "redacted", "unavailable"]

P = ParamSpec("P")
T = TypeVar("T")

# Network-level failures: the engine retries these with backoff until Redis is back.
_DOWN = (rx.ConnectionError, rx.TimeoutError, ConnectionError, TimeoutError, OSError)


def redacted(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def unavailable(where: str, exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(
        f"Redis at {where} is unreachable ({type(exc).__name__}: {exc}); start Redis or point "
        "REDIS_URL at a running server"
    )


def connect(url: str, max_connections: int) -> aioredis.Redis:
    """A client whose calls fail fast when Redis is away, so the engine's backoff decides."""
    # A blocking pool makes a burst of callers (hundreds of concurrent emits, handlers all
    # touching state) wait for a free connection instead of failing with "too many".
    # One quick retry lets a pooled connection that died with a Redis restart be replaced
    # without surfacing an error; anything longer is the engine's business.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10.0,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        retry_on_error=[rx.ConnectionError],
    )
    client = aioredis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True
    return client


def guarded(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Raise BackendUnavailable / BackendError instead of redis-py's exceptions."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        self: Any = args[0]
        try:
            return await fn(*args, **kwargs)
        except _DOWN as exc:
            raise unavailable(self.where, exc) from exc
        except rx.RedisError as exc:
            raise BackendError(f"Redis at {self.where} refused a command: {exc}") from exc

    return wrapper
