"""Stream fan-out over Redis pub/sub, so an SSE client on any process sees every `ctx.stream`.

One pattern subscription per process covers every stream of the app; the listener hands each
message to the process's local subscribers (the queues kept by the base class). It reconnects
by itself when Redis goes away, so SSE clients survive a Redis restart (missing what was
published meanwhile, as pub/sub has no memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis import exceptions as rx

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Fanout"]

log = logging.getLogger("stepline.redis")


class Fanout:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        where: str,
        deliver: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._r = client
        self._channel = f"{prefix}:ps:"
        # The prefix is the user's; glob characters in it must match literally.
        self._pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._channel) + "*"
        self._where = where
        self._deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def channel(self, stream: str) -> str:
        return self._channel + stream

    async def publish(self, stream: str, payload: dict[str, Any]) -> None:
        await self._r.publish(self.channel(stream), json.dumps(payload, default=str))

    async def ensure(self, timeout: float = 5.0) -> None:
        """Start listening (once) and wait until the subscription is in place."""
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._listen(), name="stepline-redis-fanout")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._r.pubsub()
            try:
                await pubsub.psubscribe(self._pattern)
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    if msg["type"] == "psubscribe":
                        self._ready.set()
                        delay = 0.1
                    elif msg["type"] == "pmessage":
                        self._dispatch(msg["channel"], msg["data"])
            except asyncio.CancelledError:
                raise
            except (rx.RedisError, OSError) as exc:
                self._ready.clear()
                log.error(
                    "stream fan-out lost Redis at %s (%s); retrying in %.1fs",
                    self._where,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, channel: str, data: str) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            return
        self._deliver(channel[len(self._channel) :], payload)
