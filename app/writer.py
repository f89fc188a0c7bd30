"""Group commit: every write of a process goes through one queue, many batches per commit.

While one commit is on disk the next batches pile up, so under load each commit carries many
finished deliveries and emits, and under light load a batch commits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Protocol

from app.backends.base import Backend
from app.errors import BackendError
from app.types import Batch, Delivery

__all__ = ["Claimer", "Writer"]


class Claimer(Protocol):
    """The engine, seen from the writer: claims ride along with commits."""

    def plan(self, batch: Batch) -> tuple[dict[str, int], dict[str, float]]: ...

    def accept(self, wants: dict[str, int], claimed: list[Delivery]) -> None: ...

log = logging.getLogger("stepline.writer")


class Writer:
    def __init__(self, backend: Backend, *, max_batch: int = 256,
                 on_commit: Callable[[Batch], None] | None = None) -> None:
        self._backend = backend
        self.claimer: Claimer | None = None
        self._max = max_batch
        self._on_commit = on_commit
        self._queue: asyncio.Queue[tuple[Batch, asyncio.Future[None] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.backlog = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stepline-writer")

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
        self._idle.clear()
        self._queue.put_nowait((batch, future))

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self._idle.wait()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            size = len(items[0][0].outcomes) + len(items[0][0].messages)
            while size < self._max and not self._queue.empty():
                item = self._queue.get_nowait()
                items.append(item)
                size += len(item[0].outcomes) + len(item[0].messages)
            merged = Batch()
            for batch, _ in items:
                merged.extend(batch)
            wants, lease = self.claimer.plan(merged) if self.claimer else ({}, {})
            error, claimed = await self._commit(merged, wants, lease)
            if self.claimer is not None:
                self.claimer.accept(wants, claimed)
            for batch, future in items:
                self.backlog -= len(batch.outcomes) + 1
                if future is not None and not future.done():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
            if error is None and self._on_commit is not None:
                try:
                    self._on_commit(merged)
                except Exception:
                    log.exception("on_commit hook failed")
            if self._queue.empty():
                self._idle.set()

    async def _commit(self, batch: Batch, wants: dict[str, int], lease: dict[str, float]
                      ) -> tuple[BaseException | None, list[Delivery]]:
        delay = 0.05
        for attempt in range(6):
            try:
                return None, await self._backend.write_and_claim(batch, wants, lease)
            except BackendError as exc:
                # Unacknowledged deliveries come back after their lease, so giving up on a
                # batch loses no event; it only delays it.
                log.warning("commit failed (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
            except Exception as exc:
                log.exception("commit failed")
                return exc, []
        return BackendError("the backend refused the write six times; see the log above"), []
