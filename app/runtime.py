"""One Stepline app in one process: registry + backend + writer + engine + cron."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from app.backends import Backend, create_backend
from app.context import build_message
from app.cron import CronScheduler
from app.engine import Engine
from app.errors import BackendUnavailable, NotFound, SteplineError
from app.flow import ordered_steps, rate_limits
from app.logger import mask_log_records
from app.middleware import Middleware
from app.redact import register_known_secrets
from app.registry import Registry, load_registry
from app.run import Runner
from app.settings import Mode, Settings
from app.state import State
from app.suggest import did_you_mean
from app.types import Batch, LogEntry, Message, new_id
from app.writer import Writer

__all__ = ["Runtime", "StartupAborted"]

log = logging.getLogger("stepline.runtime")


# A process that runs deliveries keeps a few thousand objects alive per batch in flight, so
# with CPython's default gen-0 threshold (700) the cyclic GC ran every few dozen deliveries and
# took a quarter of the CPU of a busy chain (bench/chain.py, measured with gc.callbacks). Above
# the working set of a full batch it runs rarely; what was loaded before the first start
# (modules, the registry) is frozen out of the collections that still run.
_GC_THRESHOLDS = (20_000, 50, 100)
_gc_tuned = False


def _tune_gc() -> None:
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(
        max(gen0, _GC_THRESHOLDS[0]), max(gen1, _GC_THRESHOLDS[1]), max(gen2, _GC_THRESHOLDS[2])
    )


class StartupAborted(SteplineError):
    """SIGTERM or SIGINT arrived while the process was still waiting for its backend."""


@contextlib.contextmanager
def _chained_signals(notify: Callable[[int], object]) -> Iterator[None]:
    """Call `notify` on SIGTERM/SIGINT, then whatever handled them before (uvicorn's own
    handler, which only acts once the server has started); restored afterwards. A signal that
    handler already took is notified at once: uvicorn takes signals while it loads the app
    (step modules, flow settings, credential checks), before these handlers exist, and would
    act on one only after a start-up that may wait STEPLINE_STARTUP_TIMEOUT for its backend."""
    previous: dict[int, object] = {}

    def handler(sig: int, frame: object) -> None:
        notify(sig)
        before = previous.get(sig)
        if callable(before):
            before(sig, frame)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals are someone else's business
        pass
    for num, before in previous.items():
        if getattr(getattr(before, "__self__", None), "should_exit", False):
            notify(num)  # uvicorn's Server.handle_exit has recorded it
            break
    try:
        yield
    finally:
        for num, before in previous.items():
            signal.signal(num, before)  # type: ignore[arg-type]


class Runtime:
    """Owns the pieces; `start()` begins claiming work and firing cron, `stop()` drains."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        backend: Backend | None = None,
        clock: Callable[[], float] | None = None,
        middleware: list[Middleware] | None = None,
    ) -> None:
        self.settings = settings
        # Every process that runs steps masks what it logs and the secrets it was given.
        register_known_secrets(settings)
        mask_log_records()
        self.registry = registry if registry is not None else load_registry(settings.steps)
        self.backend = backend if backend is not None else create_backend(settings)
        if clock is not None:
            self.backend.clock = clock  # due times of delayed emits and retries follow it
        self.backend.rate_limits = rate_limits(self.registry)
        self.backend.ordered = ordered_steps(self.registry)
        self.state = State(self.backend)
        self.commit_hooks: list[Callable[[Batch], None]] = []
        self.writer = Writer(self.backend, max_batch=settings.batch_size, on_commit=self._committed)
        self.runner = Runner(
            settings,
            self.backend,
            self.registry,
            self.writer,
            on_log=self.publish_log,
            middleware=_default_middleware(settings) + (middleware or []),
        )
        self.engine = Engine(settings, self.backend, self.registry, self.writer, runner=self.runner)
        self.writer.claimer = self.engine
        self.cron = CronScheduler(
            self.backend,
            self.registry,
            **({"clock": clock} if clock else {}),
            on_fire=lambda: self.engine.wake(None),
        )
        self._pruner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._opened = False
        self._closing = False
        self.startup_problem: str | None = "not started yet"
        """Why the backend is not open yet (while `open(wait=True)` retries), else None."""
        self.task_errors: dict[str, str] = {}
        """Background tasks (engine, writer, cron) that ended with an error, and why; each
        is restarted with backoff, and `/readyz` is 503 until it runs again."""
        self._deaths: dict[str, list[float]] = {}
        self.startup_error: str | None = None
        """Why start-up failed for good (the server logs it as its one line)."""
        self.readiness_checks: list[Callable[[], Awaitable[list[str]]]] = []
        """More reasons for `/readyz` to fail (a plugin's configuration check, say)."""

    async def open(self, *, wait: bool = False) -> None:
        """Open the backend. With `wait`, keep retrying (with backoff) while it is unreachable,
        as a long-running process should when its Redis is not up yet, for at most
        STEPLINE_STARTUP_TIMEOUT seconds. A backend that answers but cannot be used (a file
        that is not a database, an evicting Redis) fails at once."""
        if self._opened:
            return
        delay, began, limit = 0.5, time.monotonic(), self.settings.startup_timeout
        while True:
            try:
                await self.backend.open()
                break
            except BackendUnavailable as exc:
                self.startup_problem = str(exc)
                if not wait:
                    raise
                left = limit - (time.monotonic() - began) if limit else None
                if left is not None and left <= 0:
                    raise BackendUnavailable(
                        f"{exc}; gave up after {limit:g} s (STEPLINE_STARTUP_TIMEOUT)"
                    ) from None
                pause = delay if left is None else min(delay, left)
                log.error("%s; retrying in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                delay = min(delay * 2, 30.0)
        self.startup_problem = None
        self._closing = False
        self._watch("writer", self.writer.start)
        self._opened = True

    async def start(self, *, work: bool = True, cron: bool = True, wait: bool = False) -> None:
        await self.open(wait=wait)
        self.backend.serving()
        if work:
            _tune_gc()
            self._watch("engine", self._start_engine)
            self._stopping.clear()
            self._pruner = asyncio.create_task(self._prune_forever(), name="stepline-prune")
        if cron:
            self._watch("cron", self._start_cron)

    async def start_until_signal(self, *, work: bool = True, cron: bool = True) -> None:
        """`start(wait=True)` that SIGTERM or SIGINT interrupts (StartupAborted), for a server
        whose own signal handling only begins once it has started."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        with _chained_signals(lambda sig: loop.call_soon_threadsafe(stop.set)):
            starting = asyncio.ensure_future(self.start(work=work, cron=cron, wait=True))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not starting.done():
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
                raise StartupAborted(
                    f"stopped by a signal while waiting for the backend ({self.startup_problem})"
                )
            starting.result()

    # -- background tasks: none may end silently -----------------------------------------------
    def _start_engine(self) -> asyncio.Task[None] | None:
        # Engine.start() starts a loop only where none is set: a loop that died is cleared.
        if self.engine._loop_task is not None and self.engine._loop_task.done():
            self.engine._loop_task = None
        self.engine.start()
        return self.engine._loop_task

    def _start_cron(self) -> asyncio.Task[None] | None:
        if self.cron._task is not None and self.cron._task.done():
            self.cron._task = None
        self.cron.start()
        return self.cron._task

    def _watch(self, name: str, start: Callable[[], asyncio.Task[None] | None]) -> None:
        task = start()
        self.task_errors.pop(name, None)
        if task is not None:
            task.add_done_callback(lambda t: self._ended(name, t, start))

    def _ended(
        self, name: str, task: asyncio.Task[None], start: Callable[[], asyncio.Task[None] | None]
    ) -> None:
        if task.cancelled() or self._closing:
            return
        exc = task.exception()
        if exc is None:
            return  # a loop that returns has been told to stop
        now = time.monotonic()
        deaths = [t for t in self._deaths.get(name, []) if now - t < 300] + [now]
        self._deaths[name] = deaths
        delay = min(30.0, 0.5 * 2 ** (len(deaths) - 1))
        self.task_errors[name] = f"{type(exc).__name__}: {exc}"
        log.error(
            "the %s task stopped: %s; restarting it in %.1f s",
            name,
            self.task_errors[name],
            delay,
            exc_info=exc,
        )
        asyncio.get_running_loop().call_later(
            delay, lambda: None if self._closing else self._watch(name, start)
        )

    async def stop(self) -> None:
        self._closing = True
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
    def message(
        self,
        topic: str,
        data: Any,
        *,
        key: str | None = None,
        trace_id: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> Message:
        """A message to `topic` for its subscribers (used by the CLI, server and tests)."""
        return build_message(
            topic,
            data,
            trace_id or new_id(),
            self.registry.subscribers,
            self.runner.partition,
            self.backend.clock(),
            key=key,
            delay=delay,
            at=at,
        )

    async def emit(
        self,
        topic: str,
        data: Any,
        *,
        key: str | None = None,
        trace_id: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> str:
        """Durably emit an event from outside any step (with `delay`/`at`, delivered no
        earlier than then); returns the trace id."""
        if topic not in self.registry.subscribers:
            known = ", ".join(sorted(self.registry.subscribers)) or "none"
            guess = did_you_mean(topic, self.registry.subscribers)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise NotFound(f"no step subscribes to {topic!r}{hint} (subscribed topics: {known})")
        message = self.message(topic, data, key=key, trace_id=trace_id, delay=delay, at=at)
        await self.writer.submit(Batch(messages=[message]))
        return message.trace_id

    async def trigger_cron(self, name: str) -> str:
        message = await self.cron.trigger(name)
        await self.writer.submit(Batch(messages=[message]))
        return message.trace_id

    def publish_log(self, entry: LogEntry) -> None:
        self.backend._deliver_local(
            "_stepline.logs",
            {
                "ts": entry.ts,
                "level": entry.level,
                "message": entry.message,
                "step": entry.step,
                "trace_id": entry.trace_id,
                "fields": entry.fields,
            },
        )

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
