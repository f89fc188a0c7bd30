"""Group commit: every write of a process goes through one queue, many batches per commit.

While one commit is on disk the next batches pile up, so under load each commit carries many
finished deliveries and emits, and under light load a batch commits at once.

A commit that fails on the *content* of one batch (text the store cannot encode, a number JSON
cannot carry) must not fail the others it was grouped with: the group is split in halves until
the offender stands alone, everything else commits, and only the offender fails, with the
reason. A commit that fails for a *storage* reason (disk full, read-only, Redis out of memory or
away) is retried with backoff; splitting would not help.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from app.backends.base import Backend, safe_text
from app.errors import BackendError, BackendUnavailable
from app.types import Batch, Delivery, LogEntry, Outcome, Span

__all__ = ["Claimer", "UnstorableWrite", "Writer"]

log = logging.getLogger("stepline.writer")


class Claimer(Protocol):
    """The engine, seen from the writer: claims ride along with commits."""

    def plan(self, batch: Batch, settling: int) -> tuple[dict[str, int], dict[str, float]]: ...

    def accept(self, wants: dict[str, int], claimed: list[Delivery]) -> None: ...


class UnstorableWrite(BackendError):
    """One batch could not be stored because of what it holds; the others committed."""


_Item = tuple[Batch, "asyncio.Future[None] | None"]


def _size(batch: Batch) -> int:
    return len(batch.outcomes) + len(batch.messages)


def _reason(exc: BaseException) -> str:
    return safe_text(f"{type(exc).__name__}: {exc}") or ""


class Writer:
    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int = 256,
        on_commit: Callable[[Batch], None] | None = None,
    ) -> None:
        self._backend = backend
        self.claimer: Claimer | None = None
        self._max = max_batch
        self._on_commit = on_commit
        # A deque and one future to wake the loop, not an asyncio.Queue: a put there is four
        # Python calls (and its unfinished-task count) for every run.
        self._queue: collections.deque[_Item] = collections.deque()
        self._waiting: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.backlog = 0

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The commit loop, for the runtime to watch."""
        return self._task

    def start(self) -> asyncio.Task[None]:
        """Start the commit loop (again, if it ended); queued batches are kept."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="stepline-writer")
        return self._task

    async def submit(self, batch: Batch) -> None:
        """Commit `batch` (with whatever else is waiting) and return once it is durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(batch, future)
        await future

    def submit_nowait(self, batch: Batch) -> None:
        """Queue `batch` for the next commit without waiting for it."""
        self._put(batch, None)

    def _put(self, batch: Batch, future: asyncio.Future[None] | None) -> None:
        if self._task is None:
            self.start()
        self.backlog += len(batch.outcomes) + 1
        if not self._queue:
            self._idle.clear()
        self._queue.append((batch, future))
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            if not waiting.done():
                waiting.set_result(None)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        queue = self._queue
        while True:
            while not queue:
                self._waiting = asyncio.get_running_loop().create_future()
                await self._waiting
            items = [queue.popleft()]
            size = _size(items[0][0])
            while size < self._max and queue:
                item = queue.popleft()
                items.append(item)
                size += _size(item[0])
            merged = _merge(items)
            # What this commit settles frees its share of the backlog: claim into it.
            settling = sum(len(b.outcomes) + 1 for b, _ in items)
            wants, lease = self.claimer.plan(merged, settling) if self.claimer else ({}, {})
            error, claimed = await self._commit(merged, wants, lease)
            if error is None:
                # The callers waiting on this commit (webhook requests) resume before the runs
                # it claimed start, so their answers do not wait for those runs.
                self._resolve(items, None)
                if self.claimer is not None:
                    self.claimer.accept(wants, claimed)
                self._notify(merged)
                if not queue:
                    self._idle.set()
                continue
            if self.claimer is not None:
                self.claimer.accept(wants, claimed)
            if isinstance(error, BackendUnavailable):
                self._settle(items, merged, error)
            else:
                await self._isolate(items)
            if not queue:
                self._idle.set()

    def _settle(self, items: list[_Item], merged: Batch, error: BaseException | None) -> None:
        self._resolve(items, error)
        if error is None:
            self._notify(merged)

    def _resolve(self, items: list[_Item], error: BaseException | None) -> None:
        for batch, future in items:
            self.backlog -= len(batch.outcomes) + 1
            if future is not None and not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _notify(self, merged: Batch) -> None:
        if self._on_commit is not None:
            try:
                self._on_commit(merged)
            except Exception:
                log.exception("on_commit hook failed")

    async def _isolate(self, items: list[_Item]) -> None:
        """Commit `items` without the ones whose content fails the write."""
        if len(items) == 1:
            await self._alone(items[0])
            return
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            merged = _merge(half)
            error, _ = await self._commit(merged, {}, {})
            if error is None or isinstance(error, BackendUnavailable):
                self._settle(half, merged, error)
            else:
                await self._isolate(half)

    async def _alone(self, item: _Item) -> None:
        batch, future = item
        # Logs and spans are for people: their text is stored escaped rather than lost.
        # The emits, keys and outcome are the run's result and are never altered.
        tries = [Batch(batch.messages, batch.outcomes, _safe_spans(batch.spans), _safe_logs(batch))]
        error, _ = await self._commit(tries[0], {}, {})
        if error is None or isinstance(error, BackendUnavailable):
            self._settle([(tries[0], future)], tries[0], error)
            return
        reason = (
            f"the result of this run could not be stored ({_reason(error)}); fix what "
            "the handler emits (topic, key or data)"
        )
        log.error(
            "a write was refused for its content and set aside; the others in its "
            "commit were stored: %s",
            reason,
        )
        # The offender alone fails: its deliveries are dead-lettered with the reason (another
        # run would produce the same write), an API request gets the error.
        failed = Batch(
            [],
            [Outcome(o.delivery, "dead", error=reason) for o in batch.outcomes],
            _safe_spans(batch.spans, reason),
            [],
        )
        error2, _ = await self._commit(failed, {}, {})
        if error2 is not None:
            log.error(
                "could not record the failure either (%s); its deliveries are handed "
                "out again when their lease ends",
                _reason(error2),
            )
        self.backlog -= len(batch.outcomes) + 1
        if future is not None and not future.done():
            future.set_exception(UnstorableWrite(reason))

    async def _commit(
        self, batch: Batch, wants: dict[str, int], lease: dict[str, float]
    ) -> tuple[BaseException | None, list[Delivery]]:
        delay = 0.05
        error: BaseException | None = None
        for attempt in range(6):
            try:
                return None, await self._backend.write_and_claim(batch, wants, lease)
            except BackendUnavailable as exc:
                # Unacknowledged deliveries come back after their lease, so giving up on a
                # batch loses no event; it only delays it.
                log.warning("commit failed (attempt %d): %s", attempt + 1, exc)
                error = exc
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
            except Exception as exc:
                return exc, []
        return BackendUnavailable(f"the backend refused the write six times: {error}"), []


def _merge(items: list[_Item]) -> Batch:
    merged = Batch()
    for batch, _ in items:
        merged.extend(batch)
    return merged


def _safe_spans(spans: list[Span], error: str | None = None) -> list[Span]:
    out = []
    for s in spans:
        out.append(
            Span(
                s.trace_id,
                s.step,
                s.kind,
                s.started_at,
                s.span_id,
                safe_text(s.topic),
                s.attempt,
                s.duration_ms,
                "failed" if error else s.status,
                error or safe_text(s.error),
                [safe_text(t) or "" for t in s.emitted],
            )
        )
    return out


def _safe_logs(batch: Batch) -> list[LogEntry]:
    return [replace(e, message=safe_text(e.message) or "") for e in batch.logs]
