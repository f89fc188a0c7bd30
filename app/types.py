"""The records that move between the engine and a backend, named once."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

from pydantic_core import from_json

__all__ = [
    "Batch",
    "DeadLetter",
    "Delivery",
    "FlowPlan",
    "LogEntry",
    "Message",
    "Outcome",
    "Span",
    "new_id",
]


_random = random.Random(os.urandom(16)).getrandbits


def new_id() -> str:
    """A unique id for traces, spans and messages: 128 random bits as 32 hex characters, the
    size and form of a W3C trace id, so any prefix of it tells ids apart. (Mersenne Twister
    seeded from the OS, like OpenTelemetry's own id generator: fast, and unpredictable enough
    for ids, which are not secrets. Processes are started fresh, never forked, so no two
    share a generator state.)"""
    # to_bytes().hex() zero-pads as the id form needs, in a third of the time of a 032x format.
    return (_random(128) or 1).to_bytes(16, "big").hex()


class FlowPlan(NamedTuple):
    """The flow control of one delivery, fixed when it is emitted (app/flow.py)."""

    key: str | None = None
    """Ordering key, with `limit` = the step's concurrency_per_key; None: unordered."""
    limit: int | None = None
    debounce_key: str | None = None
    """Debounce key, with `quiet` and `max_wait` (0: none) seconds; None: not debounced."""
    quiet: float = 0.0
    max_wait: float = 0.0
    rate_key: str | None = None
    """Rate-limit key, when the step's `rate_limit` has one: the limit holds per key."""


_UNREAD: Any = object()  # a Message's data not decoded from its text yet


class Message:
    """One emitted event, before the backend fans it out to `steps` (its subscribers).

    An emit encodes its data once, to `raw` (compact JSON text), which the store writes as it
    is; `data` is then decoded from it only when something reads it (a flow-control key, the
    test harness's views). A message built with data and no text (cron, the tests, an emit the
    fast encoding declined) is encoded by the store, as before."""

    __slots__ = ("_data", "due", "key", "partitions", "raw", "steps", "topic", "trace_id")

    def __init__(
        self,
        topic: str,
        data: Any,
        trace_id: str,
        steps: tuple[str, ...] = (),
        key: str | None = None,
        due: float | None = None,
        partitions: dict[str, FlowPlan] | None = None,
        raw: str | None = None,
    ) -> None:
        self.topic = topic
        self._data = data
        self.trace_id = trace_id
        self.steps = steps
        self.key = key
        self.due = due
        """Epoch second it becomes due (a delayed emit); None: at once."""
        self.partitions = partitions
        """Per subscribing step with flow control: its keys and limits (see app/flow.py)."""
        self.raw = raw
        """The data as the JSON text the store writes; None: the store encodes `data`."""

    @classmethod
    def encoded(
        cls,
        topic: str,
        raw: str,
        trace_id: str,
        steps: tuple[str, ...] = (),
        key: str | None = None,
        due: float | None = None,
    ) -> Message:
        """A message whose data is known only as its JSON text, decoded when first read."""
        return cls(topic, _UNREAD, trace_id, steps, key, due, None, raw)

    @property
    def data(self) -> Any:
        data = self._data
        if data is _UNREAD:
            # Text the emit's encoder wrote without a fallback: no lone surrogate escapes. It
            # writes up to 254 levels of nesting, though, and reads back only 200: deeper data
            # is read by the standard library, as the store's reader does (codec.load).
            raw = cast(str, self.raw)
            try:
                data = from_json(raw)
            except ValueError:
                data = json.loads(raw)
            self._data = data
        return data

    @data.setter
    def data(self, value: Any) -> None:
        self._data, self.raw = value, None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        return (
            f"Message(topic={self.topic!r}, data={self.data!r}, trace_id={self.trace_id!r}, "
            f"steps={self.steps!r}, key={self.key!r}, due={self.due!r}, "
            f"partitions={self.partitions!r})"
        )

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.topic,
            self.data,
            self.trace_id,
            self.steps,
            self.key,
            self.due,
            self.partitions,
        )


@dataclass(slots=True)
class Delivery:
    """One message for one subscribing step, as claimed by a worker."""

    id: str
    step: str
    topic: str
    data: Any
    trace_id: str
    attempt: int
    created_at: float
    key: str | None = None
    """Its ordering key, when its step has `concurrency_per_key` (settling frees the key)."""
    key_limit: int = 0
    first_run: float | None = None
    """When it was first claimed (the claim's time unless an earlier run was stored with a
    retry): the `Retry` window counts from here, not from the emit, which may be days older
    (a delayed emit, a wait behind its key). None: not known, counted as now."""


@dataclass(slots=True)
class Outcome:
    """How one run of a delivery ended: `ok` (ack), `retry` at `retry_at`, or `dead`."""

    delivery: Delivery
    status: Literal["ok", "retry", "dead"]
    retry_at: float | None = None
    error: str | None = None
    traceback: str | None = None
    uncounted: bool = False
    """A retry that does not use up an attempt (`Retry`): the backend stores one less than the
    delivery's attempt, whose own number stays the one it was claimed with (see stale runs in
    app/backends/base.py)."""


@dataclass(slots=True)
class Span:
    """One handler run, as shown in traces."""

    trace_id: str
    step: str
    kind: str
    started_at: float
    span_id: str = field(default_factory=new_id)
    topic: str | None = None
    attempt: int = 1
    duration_ms: float = 0.0
    status: str = "ok"
    error: str | None = None
    emitted: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LogEntry:
    """A structured log line written by a handler through `ctx.logger`."""

    level: str
    message: str
    step: str | None
    trace_id: str | None
    span_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)


@dataclass(slots=True)
class DeadLetter:
    """A delivery that failed its last attempt, kept with its error until replayed."""

    id: str
    step: str
    topic: str
    data: Any
    trace_id: str
    attempts: int
    error: str
    traceback: str
    failed_at: float


@dataclass(slots=True)
class Batch:
    """Writes that commit together: a handler's emits commit with its acknowledgement."""

    messages: list[Message] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    logs: list[LogEntry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.messages or self.outcomes or self.spans or self.logs)

    def extend(self, other: Batch) -> None:
        self.messages.extend(other.messages)
        self.outcomes.extend(other.outcomes)
        self.spans.extend(other.spans)
        self.logs.extend(other.logs)
