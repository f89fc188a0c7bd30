"""The worker loop: claim due deliveries -> run handlers -> ack with emits in one commit,
or schedule a retry, or dead-letter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from app.backends.base import Backend
from app.context import Context
from app.errors import BackendError
from app.invoke import invoke
from app.registry import Registry, Step
from app.retries import Permanent, failure_outcome
from app.settings import Settings
from app.step_config import EventConfig
from app.types import Batch, Delivery, LogEntry, Outcome, Span
from app.writer import Writer

__all__ = ["Engine"]

log = logging.getLogger("stepline.engine")


class Engine:
    """Runs event and cron deliveries of one process."""

    def __init__(self, settings: Settings, backend: Backend, registry: Registry, writer: Writer,
                 on_log: Callable[[LogEntry], None] | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.registry = registry
        self.writer = writer
        self._on_log = on_log
        self._steps = [s for s in registry.steps.values() if s.kind in ("event", "cron")]
        self._running: dict[str, int] = {s.name: 0 for s in self._steps}
        self._reserved: dict[str, int] = dict.fromkeys(self._running, 0)
        self._reserved_total = 0
        self._tasks: dict[asyncio.Task[None], Delivery] = {}
        self._wake = asyncio.Event()
        self._hint: set[str] = set()
        self._more: set[str] = set()
        self._stopping = False
        self._throttled = False
        self._sweep_now = False
        self._loop_task: asyncio.Task[None] | None = None

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._loop_task is None and self._steps:
            self._loop_task = asyncio.create_task(self._loop(), name="stepline-engine")

    def wake(self, steps: set[str] | None = None) -> None:
        """New work for `steps` was committed by this process: claim without waiting.
        With no steps named (a replay, a cron fire), look at every step at once."""
        if steps is None:
            self._sweep_now = True
        else:
            self._hint |= steps & self._running.keys()
        if self._hint or self._throttled or self._sweep_now:
            self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def stop(self, grace: float) -> None:
        """Stop claiming, let running handlers finish within `grace`, give back the rest."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        leftover = list(self._tasks.items())
        for task, _ in leftover:
            task.cancel()
        if leftover:
            await asyncio.gather(*(t for t, _ in leftover), return_exceptions=True)
            await self.writer.flush()
            try:
                await self.backend.release([d for _, d in leftover])
            except BackendError as exc:
                log.warning("could not release %d deliveries (they return after their lease): "
                            "%s", len(leftover), exc)
        await self.writer.flush()

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self) -> None:
        last_sweep = 0.0
        failures = 0
        while not self._stopping:
            now = time.monotonic()
            sweep = self._sweep_now or now - last_sweep >= self.settings.poll_interval
            self._sweep_now = False
            candidates = self._steps if sweep else [
                s for s in self._steps if s.name in self._hint or s.name in self._more]
            self._hint.clear()
            wants = self._reserve(candidates)
            claimed: list[Delivery] = []
            if wants:
                try:
                    claimed = await self.backend.claim(wants, self._leases(wants))
                    failures = 0
                except BackendError as exc:
                    self.accept(wants, [])
                    failures += 1
                    delay = min(30.0, 0.2 * 2 ** min(failures, 8))
                    log.error("cannot claim work: %s (retrying in %.1f s)", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                if sweep:
                    last_sweep = now
                self.accept(wants, claimed)
            if claimed and self._more:
                await asyncio.sleep(0)
                continue
            timeout = max(0.0, self.settings.poll_interval - (time.monotonic() - last_sweep))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    # -- claiming ----------------------------------------------------------------------------
    def plan(self, batch: Batch) -> tuple[dict[str, int], dict[str, float]]:
        """What to claim in the same commit as `batch`: work for the steps it feeds, so a
        chain moves on without a separate claim round trip."""
        if self._loop_task is None or self._stopping:
            return {}, {}
        fed = {s for m in batch.messages for s in m.steps} | self._more
        wants = self._reserve([s for s in self._steps if s.name in fed])
        return wants, self._leases(wants)

    def _reserve(self, steps: list[Step]) -> dict[str, int]:
        """Book capacity before claiming, so concurrent claims never exceed a step's limit.
        The process-wide budget is soft: each step may claim up to what is free, so a step
        with no work never starves the others."""
        free = (self.settings.concurrency - len(self._tasks) - self._reserved_total
                - self.writer.backlog)
        self._throttled = free <= 0
        wants: dict[str, int] = {}
        if self._throttled:
            return wants
        for step in steps:
            limit = getattr(step.config, "concurrency", None) or self.settings.concurrency
            name = step.name
            n = min(limit - self._running[name] - self._reserved[name], free,
                    self.settings.batch_size)
            if n > 0:
                wants[name] = n
                self._reserved[name] += n
                self._reserved_total += n
        return wants

    def accept(self, wants: dict[str, int], claimed: list[Delivery]) -> None:
        """Run what a claim returned and release the rest of its booking."""
        for name, n in wants.items():
            self._reserved[name] -= n
            self._reserved_total -= n
        counts: dict[str, int] = {}
        for d in claimed:
            counts[d.step] = counts.get(d.step, 0) + 1
            self._spawn(d)
        self._more = ({s for s, n in wants.items() if counts.get(s, 0) >= n}
                      | (self._more - wants.keys()))

    def _leases(self, wants: dict[str, int]) -> dict[str, float]:
        # A lease outlives the step's time limit, so a slow but healthy run is not re-delivered.
        return {name: max(self.settings.lease_seconds,
                          self.registry.steps[name].config.timeout + 5) for name in wants}

    def _spawn(self, delivery: Delivery) -> None:
        self._running[delivery.step] += 1
        task = asyncio.create_task(self._execute(delivery))
        self._tasks[task] = delivery
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        delivery = self._tasks.pop(task)
        self._running[delivery.step] -= 1
        if delivery.step in self._more or self._throttled:
            self._wake.set()

    # -- one run -----------------------------------------------------------------------------
    async def _execute(self, d: Delivery) -> None:
        step = self.registry.steps[d.step]
        config = step.config
        span = Span(d.trace_id, d.step, step.kind, time.time(), topic=d.topic, attempt=d.attempt)
        ctx = Context(backend=self.backend, subscribers=self.registry.subscribers, step=d.step,
                      emits=config.emits, trace_id=d.trace_id, span_id=span.span_id,
                      attempt=d.attempt, topic=d.topic, on_log=self._on_log)
        started = time.perf_counter()
        try:
            if d.attempt > config.retries:
                raise Permanent(f"the delivery was claimed {d.attempt - 1} times without "
                                "finishing (its process stopped or was killed each time)")
            if isinstance(config, EventConfig):
                await invoke(step, ctx, _parse_input(config, d.data), timeout=config.timeout)
            else:
                await invoke(step, ctx, timeout=config.timeout)
            outcome = Outcome(d, "ok")
            messages = ctx.emitted
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = failure_outcome(d, config.retries, exc, self.settings)
            messages = []
            span.status = "retrying" if outcome.status == "retry" else "failed"
            span.error = outcome.error
            ctx.logger.error(f"attempt {d.attempt} of {config.retries} failed",
                             error=outcome.error)
        span.duration_ms = (time.perf_counter() - started) * 1000
        span.emitted = [m.topic for m in messages]
        self.writer.submit_nowait(Batch(messages, [outcome], [span], ctx.logs))


def _parse_input(config: EventConfig, data: object) -> object:
    model = config.input
    if model is None:
        return data
    assert issubclass(model, BaseModel)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Permanent(f"event data does not match {model.__name__}: {exc}") from None
