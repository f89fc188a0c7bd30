"""The one run path: API, event and cron runs all go through `Runner`.

For every run it builds the context and the span, asks the middleware, calls the handler under
its time limit, decides the outcome (ack, retry or dead letter; for an API step, the response),
and hands the writes to the writer as one batch, so a handler's emits commit with its
acknowledgement. Features around runs (metrics, tracing, the loop watchdog) are middleware
(`app.middleware`), not branches in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from app.backends.base import Backend
from app.context import Context, Partition
from app.flow import planner
from app.http import Request
from app.invoke import Deadlines, HandlerTimeout, SyncPools, invoke, timed_out
from app.middleware import Middleware, MiddlewareChain, Run
from app.redact import redact_text
from app.registry import Registry, Step
from app.retries import Permanent, Retry, failure_outcome
from app.settings import Settings
from app.step_config import ApiConfig, CronConfig, EventConfig
from app.types import Batch, Delivery, LogEntry, Outcome, Span, new_id
from app.watchdog import BLOCKED_MS
from app.writer import Writer

__all__ = ["Runner"]

log = logging.getLogger("stepline.run")


class Runner:
    """Runs handlers for one runtime."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        writer: Writer,
        *,
        on_log: Callable[[LogEntry], None] | None = None,
        middleware: Iterable[Middleware] = (),
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.registry = registry
        self.writer = writer
        self.on_log = on_log
        self.chain = MiddlewareChain(middleware)
        self.pools = SyncPools(settings.sync_threads)
        self.deadlines = Deadlines()
        """Time limits of the runs the engine starts (it arms one timer per claimed batch)."""
        self._configs: dict[str, _Config] = {}
        configs = {name: step.config for name, step in registry.steps.items()}
        self.partition: Partition = planner(configs)

    def add_middleware(self, mw: Middleware) -> None:
        self.chain.add(mw)

    def new_run(
        self,
        step: Step,
        trace_id: str,
        *,
        attempt: int = 1,
        topic: str | None = None,
        delivery: Delivery | None = None,
        request: Request | None = None,
    ) -> Run:
        # Positional on purpose: a class called with keywords gets them as a new dict.
        config = self._config(step)
        span_id = new_id()
        span = Span(trace_id, config.name, config.kind, time.time(), span_id, topic, attempt)
        ctx = Context(
            self.backend,
            self.registry.subscribers,
            config.name,
            config.emits,
            trace_id,
            span_id,
            attempt,
            delivery.topic if delivery is not None else None,
            self.on_log,
            self.settings.mode,
            self.partition,
        )
        return Run(step, ctx, span, delivery, request)

    def _config(self, step: Step) -> _Config:
        config = self._configs.get(step.config.name)
        if config is None or config.step is not step:
            config = self._configs[step.config.name] = _Config(step)
        return config

    async def _call(
        self, run: Run, args: tuple[Any, ...], finish: Callable[[Any], Any] | None = None
    ) -> None:
        """Middleware before, the handler, middleware on error: sets `run.result` or
        `run.error`, and the span's duration."""
        step = run.step
        run.started = started = time.perf_counter()
        try:
            self.chain.before_run(run)
            if run.task is not None and step.is_async and run.timeout is not None:
                # The engine's runs: the time limit is the batch's timer (self.deadlines),
                # so the handler is awaited here, without `invoke`'s coroutine around it.
                try:
                    result = await step.handler(*args, run.ctx)
                except asyncio.CancelledError:
                    if not self.deadlines.expired(asyncio.current_task()):
                        raise
                    raise timed_out(step.config.name, run.timeout, None) from None
            else:
                result = await invoke(
                    step,
                    run.ctx,
                    *args,
                    timeout=run.timeout,
                    pools=self.pools,
                    deadlines=self.deadlines if run.task is not None else None,
                )
            run.result = finish(result) if finish is not None else result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            run.error = exc
        elapsed = time.perf_counter() - started
        run.span.duration_ms = elapsed * 1000
        notes = run.notes
        blocked = notes.get(BLOCKED_MS) if notes else None
        if run.error is None and blocked and run.timeout is not None and elapsed > run.timeout:
            # Past its deadline and it held the loop (the watchdog saw it): the loop never had
            # the chance to cancel it. A run that is merely late on a busy loop is not this.
            run.error = HandlerTimeout(
                f"{run.name} ran {elapsed:.2f} s, past its {run.timeout:g} s timeout, without "
                f"giving the event loop back (blocked it for {blocked:.0f} ms): a blocking call "
                "inside `async def` stalls every run of the process (make the handler a plain "
                "`def`, or await a non-blocking call)"
            )
        if run.error is not None:
            self.chain.on_error(run, run.error)

    # -- event and cron ------------------------------------------------------------------------
    async def run_delivery(self, d: Delivery, task: asyncio.Task[None] | None = None) -> None:
        """Run one claimed delivery. `task` runs it and has its time limit armed in
        `self.deadlines`; without one, the run keeps its own."""
        step = self.registry.steps[d.step]
        config = self._config(step)
        assert config.retries is not None  # an event or cron step
        run = self.new_run(step, d.trace_id, attempt=d.attempt, topic=d.topic, delivery=d)
        run.timeout = config.timeout
        run.task = task
        if d.attempt > config.retries:
            run.error = Permanent(
                f"the delivery was claimed {d.attempt - 1} times without "
                "finishing (its process stopped or was killed each time)"
            )
            self.chain.on_error(run, run.error)
        else:
            try:
                args = (
                    ((d.data if config.model is None else _parse_input(config, d.data)),)
                    if config.event
                    else ()
                )
            except Permanent as refused:
                run.error = refused
                self.chain.on_error(run, refused)
            else:
                await self._call(run, args)
        ctx, span = run.ctx, run.span
        exc = run.error
        if exc is None:
            run.outcome = outcome = Outcome(d, "ok")
            messages = ctx.emitted
            if messages:
                span.emitted = [m.topic for m in messages]
        else:
            now = self.backend.clock()  # an injected clock's time, as the retry's due time
            run.outcome = outcome = failure_outcome(d, config.retries, exc, self.settings, now)
            messages = []
            span.status = "retrying" if outcome.status == "retry" else "failed"
            span.error = outcome.error
            _log_failure(ctx, outcome, exc, config.retries, now)
        self.chain.after_run(run, outcome.status)
        running = exc.running if isinstance(exc, HandlerTimeout) else None
        if running is None:
            self.writer.submit_nowait(Batch(messages, [outcome], [span], ctx.logs))
            return
        # The thread of a timed-out `def` handler cannot be stopped. The failure shows at once;
        # the delivery settles (and may run again) only once the thread has returned, and the
        # run keeps its place in the step's concurrency until then.
        self.writer.submit_nowait(Batch([], [], [span], ctx.logs))
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(running)
        assert exc is not None
        self.writer.submit_nowait(
            Batch(
                outcomes=[
                    failure_outcome(d, config.retries, exc, self.settings, self.backend.clock())
                ]
            )
        )

    # -- api -----------------------------------------------------------------------------------
    async def run_request(
        self, step: Step, req: Request, trace_id: str, finish: Callable[[Any], Any]
    ) -> Run:
        """Run an API handler; `finish` turns its result into the response (a failure there
        is the handler's failure). The emits are durable when this returns; a failed commit
        raises (nothing was accepted)."""
        config = step.config
        assert isinstance(config, ApiConfig)
        run = self.new_run(step, trace_id, topic=f"{config.method} {config.path}", request=req)
        await self._call(run, (req,), finish)
        ctx, span = run.ctx, run.span
        if run.error is not None:
            # Masked before it is stored, as a delivery's error is (app.retries).
            span.status = "failed"
            span.error = redact_text(f"{type(run.error).__name__}: {run.error}")
            ctx.emitted.clear()
            if not isinstance(run.error, Retry):
                log.error(
                    "API step %s failed (trace %s)", config.name, trace_id, exc_info=run.error
                )
        span.emitted = [m.topic for m in ctx.emitted]
        batch = Batch(ctx.emitted, [], [span], ctx.logs)
        if not ctx.emitted:
            # Only accepted events must be on disk before the answer; a span can follow.
            self.chain.after_run(run, "failed" if run.error is not None else "ok")
            self.writer.submit_nowait(batch)
            return run
        try:
            await self.writer.submit(batch)
        except Exception:
            self.chain.after_run(run, "failed")
            raise
        self.chain.after_run(run, "ok")
        return run


def _log_failure(
    ctx: Context, outcome: Outcome, exc: BaseException, retries: int, now: float
) -> None:
    if isinstance(exc, Retry) and outcome.status == "retry" and outcome.retry_at is not None:
        ctx.logger.warning(
            f"attempt {ctx.attempt} asked to run again in {max(outcome.retry_at - now, 0):.1f} s",
            error=exc.reason,
        )
    elif isinstance(exc, Permanent):
        ctx.logger.error("dead-lettered: another attempt cannot succeed", error=outcome.error)
    else:
        ctx.logger.error(f"attempt {ctx.attempt} of {retries} failed", error=outcome.error)


class _Config:
    """What a run reads of its step's config, read once per step: an attribute of a pydantic
    model goes through its `__getattr__` hook, and a `Step`'s name through a property."""

    __slots__ = ("emits", "event", "kind", "model", "name", "retries", "step", "timeout")

    def __init__(self, step: Step) -> None:
        config = step.config
        self.step = step
        self.name = config.name
        self.kind = config.type
        self.emits = config.emits
        self.event = isinstance(config, EventConfig)
        self.model = config.input if isinstance(config, EventConfig) else None
        self.retries: int | None = (
            config.retries if isinstance(config, EventConfig | CronConfig) else None
        )
        self.timeout: float | None = getattr(config, "timeout", None)


def _parse_input(config: _Config, data: object) -> object:
    model = config.model
    if model is None:
        return data
    assert issubclass(model, BaseModel)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Permanent(f"event data does not match {model.__name__}: {exc}") from None
