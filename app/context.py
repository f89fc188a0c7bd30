"""What a handler gets: emit, state, stream, logger, trace id, and the mode of the process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn

from app.backends.base import Backend
from app.backends.codec import encode
from app.errors import UndeclaredTopic
from app.logger import StepLogger
from app.retries import Retry
from app.schedule import due_time
from app.settings import Mode
from app.state import State, jsonable
from app.types import FlowPlan, LogEntry, Message

__all__ = ["Context", "Partition", "SyncContext", "build_message"]

Partition = Callable[[tuple[str, ...], Message], dict[str, FlowPlan] | None]
"""Flow control of a message for its subscribing steps (app.flow.planner)."""


def build_message(
    topic: str,
    data: Any,
    trace_id: str,
    subscribers: Mapping[str, tuple[str, ...]],
    partition: Partition | None,
    now: float,
    *,
    key: str | None = None,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
) -> Message:
    """A message to `topic` for its subscribers: what a handler's `ctx.emit` and an emit from
    outside any step (`Runtime.message`: CLI, server, tests) both build."""
    if key is not None and not isinstance(key, str):
        raise TypeError("emit key must be a string")
    due = None if delay is None and at is None else due_time(delay, at, now)
    steps = subscribers.get(topic, ())
    # Encoded once, here; the store writes the text as it is, and the data is decoded from it
    # only if a flow-control key is read from it. What the quick encoding declines (a type
    # JSON cannot carry, NaN, a lone surrogate, a long int) takes the standard path: refused
    # here, or by the store, with the same reasons as before.
    raw = encode(data)
    if raw is None:
        m = Message(topic, jsonable(data, f"data emitted to {topic!r}"), trace_id, steps, key, due)
    else:
        m = Message.encoded(topic, raw, trace_id, steps, key, due)
    if partition is not None and steps:
        m.partitions = partition(steps, m)
    return m


class Context:
    """The handler's view of the runtime. Emits wait here until the run commits."""

    # Positional or by name: the run path passes them in this order (a call by keywords
    # builds a dict of them for every run).
    def __init__(
        self,
        backend: Backend,
        subscribers: Mapping[str, tuple[str, ...]],
        step: str,
        emits: list[str],
        trace_id: str,
        span_id: str,
        attempt: int = 1,
        topic: str | None = None,
        on_log: Callable[[LogEntry], None] | None = None,
        mode: Mode = Mode.START,
        partition: Partition | None = None,
    ) -> None:
        self.step = step
        self.mode = mode
        """How the process was started (`Mode.DEV` under `stepline dev`): integrations relax a
        check only when this says dev."""
        self.trace_id = trace_id
        self.span_id = span_id
        self.attempt = attempt
        self.topic = topic
        self.logs: list[LogEntry] = []
        self.emitted: list[Message] = []
        self._backend = backend
        self._subscribers = subscribers
        self._emits = emits
        self._partition = partition
        self._on_log = on_log
        # Most runs of a busy chain touch neither: built on first use.
        self._state: State | None = None
        self._logger: StepLogger | None = None

    @property
    def state(self) -> State:
        if self._state is None:
            self._state = State(self._backend)
        return self._state

    @property
    def logger(self) -> StepLogger:
        if self._logger is None:
            self._logger = StepLogger(
                self.step, self.trace_id, self.span_id, self.logs, self._on_log, self.attempt
            )
        return self._logger

    async def emit(
        self,
        topic: str,
        data: Any = None,
        key: str | None = None,
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Queue an event; it is delivered once this run commits, or, with `delay` (seconds)
        or `at` (an aware datetime), no earlier than then (see app/schedule.py)."""
        if topic not in self._emits:
            raise UndeclaredTopic(self.step, topic, self._emits)
        self.emitted.append(
            build_message(
                topic,
                data,
                self.trace_id,
                self._subscribers,
                self._partition,
                self._backend.clock(),
                key=key,
                delay=delay,
                at=at,
            )
        )

    def retry_after(self, seconds: float, reason: str = "the provider said later") -> NoReturn:
        """End this run and run the delivery again in `seconds`, without counting an attempt
        (as `raise Retry(delay=seconds)`: for a provider's Retry-After)."""
        raise Retry(delay=seconds, reason=reason)

    async def stream(self, name: str, data: Any) -> None:
        """Push a live update to clients of GET /streams/{name}."""
        now = time.time()
        payload = {
            "stream": name,
            "data": jsonable(data, "stream data"),
            "trace_id": self.trace_id,
            "step": self.step,
            "ts": now,
        }
        await self._backend.publish(f"stream:{name}", payload)
        # Also where the fan-out is another process's (Redis): the Streams view's last time.
        self._backend.note_stream(name, now)


class _SyncState:
    def __init__(self, state: State, call: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._state = state
        self._call = call

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._state, name)
        return lambda *args, **kwargs: self._call(method(*args, **kwargs))


class SyncContext:
    """The same context for a plain `def` handler running in a thread: methods block."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self.step = ctx.step
        self.mode = ctx.mode
        self.trace_id = ctx.trace_id
        self.attempt = ctx.attempt
        self.topic = ctx.topic
        self.logger = ctx.logger
        self.state = _SyncState(ctx.state, self._call)
        self.retry_after = ctx.retry_after

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def emit(
        self,
        topic: str,
        data: Any = None,
        key: str | None = None,
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        self._call(self._ctx.emit(topic, data, key, delay=delay, at=at))

    def stream(self, name: str, data: Any) -> None:
        self._call(self._ctx.stream(name, data))
