"""Connecting to Redis, and turning its failures into Stepline's errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as rx
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from app.errors import BackendError, BackendUnavailable

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = ["check_config", "connect", "guarded", "redacted", "unavailable"]

log = logging.getLogger("stepline.redis")

P = ParamSpec("P")
T = TypeVar("T")

# Network-level failures: the engine retries these with backoff until Redis is back.
_DOWN = (rx.ConnectionError, rx.TimeoutError, ConnectionError, TimeoutError, OSError)
# Refusals that hold for every write until an operator acts (memory, replica, failed save).
_STORAGE = {
    "OOM": "Redis is out of memory (used memory > maxmemory) and refuses writes; raise "
    "maxmemory, free memory or add capacity",
    "READONLY": "Redis is a read-only replica; point REDIS_URL at the primary",
    "MISCONF": "Redis refuses writes because it cannot save to disk; see its log",
    "BUSY": "Redis is busy running a long script",
    "TRYAGAIN": "Redis asked to try again",
    "MASTERDOWN": "the Redis primary is down",
}


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


def guarded(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Raise BackendUnavailable / BackendError instead of redis-py's exceptions, and note on
    the backend (`storage_error`) a failure that will hold for every write."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        self: Any = args[0]
        try:
            return await fn(*args, **kwargs)
        except _DOWN as exc:
            error = unavailable(self.where, exc)
            self.storage_error = str(error)
            raise error from exc
        except rx.RedisError as exc:
            # redis-py turns OOM and READONLY replies into their own classes, without the code.
            code = (
                "OOM"
                if isinstance(exc, rx.OutOfMemoryError)
                else "READONLY"
                if isinstance(exc, rx.ReadOnlyError)
                else str(exc).split(" ", 1)[0]
            )
            reason = _STORAGE.get(code)
            if reason is not None:
                self.storage_error = f"Redis at {self.where}: {reason} ({exc})"
                raise BackendUnavailable(self.storage_error) from exc
            raise BackendError(f"Redis at {self.where} refused a command: {exc}") from exc

    return wrapper


async def check_config(client: aioredis.Redis, where: str, settings: Settings) -> str | None:
    """Refuse a Redis that would drop our keys when full. A managed Redis that hides CONFIG is
    taken on trust, with a warning. Returns the warning for a Redis that keeps nothing on
    disk, for the serving process to give once (a one-shot command stays quiet)."""
    try:
        policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy")
        appendonly = (await client.config_get("appendonly")).get("appendonly")
    except rx.ResponseError as exc:
        log.warning(
            "cannot read the configuration of Redis at %s (%s); make sure its "
            "maxmemory-policy is noeviction, or events can be evicted",
            where,
            exc,
        )
        return None
    if policy not in (None, "noeviction"):
        message = (
            f"Redis at {where} has maxmemory-policy {policy}: when memory is full it "
            "evicts keys, which loses events and emit keys without a trace. Set "
            "`maxmemory-policy noeviction` (redis.conf or CONFIG SET)"
        )
        if not settings.redis_allow_eviction:
            raise BackendError(
                message + ", or set STEPLINE_REDIS_ALLOW_EVICTION=1 if you accept that"
            )
        log.warning("%s; STEPLINE_REDIS_ALLOW_EVICTION is set, going on", message)
    if appendonly == "no":
        return (
            f"Redis at {where} runs with appendonly no: a Redis restart loses the events of "
            "the last snapshot interval; set `appendonly yes` for durability"
        )
    return None
