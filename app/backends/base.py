"""The backend contract: queue, state, cron fires, traces and logs, stream fan-out.

A backend is one class with a small set of primitives. The engine batches its writes into
`Batch` objects so that a handler's emits and its acknowledgement commit together, and many
finished deliveries share one commit. Behaviour tests in tests/runtime run against every backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, overload

from app.types import Batch, DeadLetter, Delivery, LogEntry, Message, Span

__all__ = ["STREAMS_KEPT", "Backend", "QueueStats", "dump_json", "safe_text", "valid_ids"]

STREAMS_KEPT = 1000
"""Stream names a process remembers the last message time of (`Backend.note_stream`)."""

QueueStats = dict[str, dict[str, int]]
"""Per step: {"queued": n, "scheduled": n, "in_flight": n, "dead": n}."""


def valid_ids(ids: list[str]) -> bool:
    """Dead-letter ids are row numbers: ASCII digits within a signed 64-bit integer (Python's
    `isdigit` and `int` would also take Arabic-Indic digits, and SQLite overflows past it)."""
    return all(isinstance(i, str) and 0 < len(i) <= 18 and i.isascii() and i.isdigit() for i in ids)


@overload
def safe_text(text: str) -> str: ...
@overload
def safe_text(text: None) -> None: ...
def safe_text(text: str | None) -> str | None:
    """`text` storable as UTF-8: a lone surrogate becomes its visible escape ("\\ud800")."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# One encoder, built once: `json.dumps(..., allow_nan=False)` builds a new one per call.
_strict_encode = json.JSONEncoder(allow_nan=False).encode


def dump_json(value: Any, what: str = "value", **options: Any) -> str:
    """`json.dumps` that refuses NaN and Infinity, which Python would write as invalid JSON
    (read back as null or not at all by other readers), with an error that says where."""
    try:
        return json.dumps(value, allow_nan=False, **options) if options else _strict_encode(value)
    except ValueError as exc:
        if "JSON compliant" not in str(exc):
            raise
        raise ValueError(
            f"{what} holds NaN or Infinity, which JSON cannot carry; send a "
            "finite number, null or a string instead"
        ) from None


class Backend(ABC):
    """Storage for one Stepline app. Subclasses fill in the abstract primitives."""

    name: str = "abstract"

    storage_error: str | None = None
    """Why the last write failed for a storage reason (disk full, read-only, corrupt, out of
    memory, unreachable), until a write succeeds again; `/readyz` reports it."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Any]]] = {}
        self.clock: Callable[[], float] = time.time
        """What "now" is for due times (delayed emits, retries, leases); tests inject one."""
        self.rate_limits: dict[str, tuple[int, float, bool]] = {}
        """Per step: (n, window seconds, per key): at most n claims of it (of each of its rate
        keys, when per key) per window, across processes."""
        self.ordered: dict[str, bool] = {}
        """Per step with an ordering key: True when a delivery waiting for its retry releases
        its key (`key_on_failure: "release"`), to queue behind it again once due."""
        self.streams_seen: dict[str, float] = {}
        """Per stream name: when this process last pushed (or relayed) a message to it, for
        the Workbench's Streams view, the most recent first to be kept (`note_stream`). Kept
        in memory: streams have no history."""

    # -- lifecycle ---------------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    def serving(self) -> None:
        """This process serves (HTTP and/or the engine), not a one-shot command: give the
        warnings meant for an operator here, once. None by default."""
        return None

    @abstractmethod
    async def ping(self) -> bool:
        """True while the storage answers."""

    async def probe_write(self) -> None:
        """A small real write that touches no data; on success `storage_error` is cleared.
        `/readyz` makes it while the last write failed: a process that the failing probe took
        out of rotation gets no request that would write, so without it it would stay
        unready after the disk was freed. Raises what a failed write raises."""
        raise NotImplementedError(f"the {self.name} backend has no write probe")

    # -- queue ------------------------------------------------------------------------------
    @abstractmethod
    async def write(self, batch: Batch) -> None:
        """Commit a batch atomically: enqueue messages (dedup by key), settle outcomes,
        record spans and logs. Nothing of it is visible unless all of it is.

        An outcome settles only the claim it came from (its delivery's attempt number). A
        stale run, one whose lease ran out and whose delivery was claimed again, is ignored
        when it ends: its ack, retry or dead letter would settle (or free the ordering key of)
        a delivery that another run holds. Its emits, spans and logs are stored as any
        run's: at-least-once, as when the redelivery's run ends after it."""

    @abstractmethod
    async def claim(self, wants: Mapping[str, int], lease: Mapping[str, float]) -> list[Delivery]:
        """Lease up to `wants[step]` due deliveries of each step for `lease[step]` seconds.
        The returned deliveries carry their attempt number (1 on the first claim)."""

    async def write_and_claim(
        self, batch: Batch, wants: Mapping[str, int], lease: Mapping[str, float]
    ) -> list[Delivery]:
        """`write(batch)` then `claim(wants, lease)`; backends may do both in one round trip."""
        await self.write(batch)
        return await self.claim(wants, lease) if wants else []

    @abstractmethod
    async def release(self, deliveries: list[Delivery]) -> None:
        """Give claimed deliveries back unfinished, due at once (graceful shutdown)."""

    @abstractmethod
    async def pending(self, step: str | None = None) -> int:
        """Deliveries not yet settled (due, scheduled for retry or in flight)."""

    @abstractmethod
    async def queue_stats(self) -> QueueStats: ...

    @abstractmethod
    async def queued(self, limit: int = 100) -> list[dict[str, Any]]:
        """Unsettled deliveries, oldest first, for display."""

    async def scheduled(self, limit: int = 100, step: str | None = None) -> list[dict[str, Any]]:
        """Deliveries not due yet (delayed emits, retries, debounced or rate-limited ones),
        soonest first, each shaped as a row of `queued`. Backends read them by due time, so a
        backlog of older deliveries does not hide them; this default filters `queued`."""
        rows = [
            r
            for r in await self.queued(max(limit, 1000))
            if r["status"] == "scheduled" and (step is None or r["step"] == step)
        ]
        return sorted(rows, key=lambda r: r["due"])[:limit]

    @abstractmethod
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    @abstractmethod
    async def replay(self, ids: list[str] | None = None) -> int:
        """Move dead letters (all when `ids` is None) back to the queue; return how many."""

    # -- state ------------------------------------------------------------------------------
    @abstractmethod
    async def state_get(self, group: str, key: str) -> tuple[bool, Any]:
        """(found, value) for a live key."""

    @abstractmethod
    async def state_set(self, group: str, key: str, value: Any, ttl: float | None) -> None: ...

    @abstractmethod
    async def state_delete(self, group: str, key: str) -> bool: ...

    @abstractmethod
    async def state_list(self, group: str) -> dict[str, Any]: ...

    @abstractmethod
    async def state_clear(self, group: str) -> int: ...

    @abstractmethod
    async def state_groups(self) -> list[str]: ...

    @abstractmethod
    async def state_update(
        self, group: str, key: str, fn: Callable[[Any], Any], default: Any
    ) -> Any:
        """Apply `fn` to the current value atomically; `fn` may be called again on conflict."""

    async def state_increment(self, group: str, key: str, by: int | float) -> int | float:
        return await self.state_update(group, key, lambda v: (v or 0) + by, 0)

    async def state_ttl(self, group: str, key: str) -> float | None:
        """Seconds left before the key expires, None when it never does."""
        return None

    # -- cron -------------------------------------------------------------------------------
    @abstractmethod
    async def try_fire(self, step: str, tick: float, message: Message) -> bool:
        """Record the fire of `step` for `tick` and enqueue `message`, once across processes.
        False when this tick (or a later one) was already fired."""

    @abstractmethod
    async def last_fire(self, step: str) -> float | None: ...

    # -- traces and logs --------------------------------------------------------------------
    @abstractmethod
    async def spans(
        self,
        *,
        trace_id: str | None = None,
        step: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Span]:
        """Recorded spans, newest first."""

    @abstractmethod
    async def logs(
        self, *, trace_id: str | None = None, step: str | None = None, limit: int = 200
    ) -> list[LogEntry]:
        """Recorded log entries, newest first."""

    @abstractmethod
    async def prune(self) -> None:
        """Trim finished records to their retention bounds and drop expired keys."""

    # -- stream fan-out ---------------------------------------------------------------------
    async def publish(self, stream: str, payload: dict[str, Any]) -> None:
        """Deliver `payload` to every subscriber of `stream` (in this process by default)."""
        self._deliver_local(stream, payload)

    def note_stream(self, name: str, ts: float) -> None:
        """Record a message on stream `name` at `ts`. Names made at run time (one a room, an
        order) would otherwise pile up for the life of the process: past `STREAMS_KEPT`
        names, the one without a message for longest is forgotten."""
        seen = self.streams_seen
        seen.pop(name, None)  # re-inserted last: the dict stays in order of last message
        seen[name] = ts
        if len(seen) > STREAMS_KEPT:
            del seen[next(iter(seen))]

    def _deliver_local(self, stream: str, payload: dict[str, Any]) -> None:
        name = payload.get("stream")
        if stream.startswith("stream:") and isinstance(name, str):
            ts = payload.get("ts")
            self.note_stream(name, float(ts) if isinstance(ts, int | float) else time.time())
        for queue in self._subscribers.get(stream, ()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(payload)

    async def subscribe(self, stream: str) -> AsyncIterator[dict[str, Any]]:
        """Messages published to `stream` from now on, until the consumer stops."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        self._subscribers.setdefault(stream, set()).add(queue)
        await self._subscribed(stream)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[stream].discard(queue)

    async def _subscribed(self, stream: str) -> None:  # noqa: B027
        """Hook for backends that fan out across processes."""
