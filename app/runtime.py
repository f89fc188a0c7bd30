"""One Stepline app in one process: registry + backend + writer + engine + cron."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from app.backends import Backend, create_backend
from app.cron import CronScheduler
from app.engine import Engine
from app.errors import BackendUnavailable, NotFound
from app.logger import mask_log_records
from app.middleware import Middleware
from app.redact import register_known_secrets
from app.registry import Registry, load_registry
from app.run import Runner
from app.settings import Mode, Settings
from app.state import State, jsonable
from app.types import Batch, LogEntry, Message, new_id
from app.writer import Writer

__all__ = ["Runtime"]

log = logging.getLogger("stepline.runtime")


class Runtime:
    """Owns the pieces; `start()` begins claiming work and firing cron, `stop()` drains."""

    def __init__(self, settings: Settings, *, registry: Registry | None = None,
                 backend: Backend | None = None, clock: Callable[[], float] | None = None,
                 middleware: list[Middleware] | None = None) -> None:
        self.settings = settings
        # Every process that runs steps masks what it logs and the secrets it was given.
        register_known_secrets(settings)
        mask_log_records()
        self.registry = registry if registry is not None else load_registry(settings.steps)
        self.backend = backend if backend is not None else create_backend(settings)
        self.state = State(self.backend)
        self.commit_hooks: list[Callable[[Batch], None]] = []
        self.writer = Writer(self.backend, max_batch=settings.batch_size,
                             on_commit=self._committed)
        self.runner = Runner(settings, self.backend, self.registry, self.writer,
                             on_log=self.publish_log,
                             middleware=_default_middleware(settings) + (middleware or []))
        self.engine = Engine(settings, self.backend, self.registry, self.writer,
                             runner=self.runner)
        self.writer.claimer = self.engine
        self.cron = CronScheduler(self.backend, self.registry,
                                  **({"clock": clock} if clock else {}),
                                  on_fire=lambda: self.engine.wake(None))
        self._pruner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._opened = False

    async def open(self, *, wait: bool = False) -> None:
        """Open the backend. With `wait`, keep retrying (with backoff) until it answers, as a
        long-running process should when its Redis is not up yet."""
        if self._opened:
            return
        delay = 0.5
        while True:
            try:
                await self.backend.open()
                break
            except BackendUnavailable as exc:
                if not wait:
                    raise
                log.error("%s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.writer.start()
        self._opened = True

    async def start(self, *, work: bool = True, cron: bool = True, wait: bool = False) -> None:
        await self.open(wait=wait)
        if work:
            self.engine.start()
            self._stopping.clear()
            self._pruner = asyncio.create_task(self._prune_forever(), name="stepline-prune")
        if cron:
            self.cron.start()

    async def stop(self) -> None:
        if not self._opened:
            return
        await self.cron.stop()
        await self.engine.stop(self.settings.shutdown_grace)
        if self._pruner is not None:
            self._stopping.set()
            await asyncio.gather(self._pruner, return_exceptions=True)
            self._pruner = None
        await self.writer.close()
        await self.backend.close()
        self._opened = False

    @property
    def mode(self) -> Mode:
        return self.settings.mode

    def add_middleware(self, mw: Middleware) -> None:
        """Run `mw`'s hooks around every handler run, after those already added."""
        self.runner.add_middleware(mw)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- writes from outside a handler ---------------------------------------------------------
    def message(self, topic: str, data: Any, *, key: str | None = None,
                trace_id: str | None = None) -> Message:
        """A message to `topic` for its subscribers (used by the CLI, server and tests)."""
        return Message(topic, jsonable(data, f"data emitted to {topic!r}"),
                       trace_id or new_id(), self.registry.subscribers.get(topic, ()), key)

    async def emit(self, topic: str, data: Any, *, key: str | None = None,
                   trace_id: str | None = None) -> str:
        """Durably emit an event from outside any step; returns the trace id."""
        if topic not in self.registry.subscribers:
            known = ", ".join(sorted(self.registry.subscribers)) or "none"
            raise NotFound(f"no step subscribes to {topic!r} (subscribed topics: {known})")
        message = self.message(topic, data, key=key, trace_id=trace_id)
        await self.writer.submit(Batch(messages=[message]))
        return message.trace_id

    async def trigger_cron(self, name: str) -> str:
        message = await self.cron.trigger(name)
        await self.writer.submit(Batch(messages=[message]))
        return message.trace_id

    def publish_log(self, entry: LogEntry) -> None:
        self.backend._deliver_local("_stepline.logs", {
            "ts": entry.ts, "level": entry.level, "message": entry.message, "step": entry.step,
            "trace_id": entry.trace_id, "fields": entry.fields})

    def _committed(self, batch: Batch) -> None:
        # An empty set still wakes an engine that was waiting for the writer to catch up.
        self.engine.wake({s for m in batch.messages for s in m.steps})
        self.runner.chain.on_commit(batch)
        for hook in self.commit_hooks:
            hook(batch)

    async def _prune_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 60)
            if self._stopping.is_set():
                return
            with contextlib.suppress(Exception):
                await self.backend.prune()


def _default_middleware(settings: Settings) -> list[Middleware]:
    # Imported here: prometheus-client must not load before `start` has chosen its mode.
    chain: list[Middleware] = []
    if settings.loop_block_ms > 0:
        from app.watchdog import LoopWatchdog

        chain.append(LoopWatchdog(settings.loop_block_ms))
    if settings.metrics:
        from app.metrics import Metrics

        chain.append(Metrics())
    from app.otel import tracing_from_env

    tracing = tracing_from_env(settings.otel)
    if tracing is not None:
        chain.append(tracing)
    return chain
