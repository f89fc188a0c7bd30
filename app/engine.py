"""The worker loop: claim due deliveries within each step's capacity and run them through the
one run path (`app.run.Runner`), which acks with the emits in one commit, or schedules a
retry, or dead-letters."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable

from app.backends.base import Backend
from app.errors import BackendError
from app.invoke import Resume
from app.registry import Registry, Step
from app.run import Runner
from app.settings import Settings
from app.types import Batch, Delivery, LogEntry
from app.writer import Writer

__all__ = ["STALLED", "Engine"]

log = logging.getLogger("stepline.engine")
STALLED = 3
"""Claims failed in a row (about 3 s of retries) after which /readyz reports the engine."""


class Engine:
    """Runs event and cron deliveries of one process."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        writer: Writer,
        on_log: Callable[[LogEntry], None] | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.registry = registry
        self.writer = writer
        self.runner = runner or Runner(settings, backend, registry, writer, on_log=on_log)
        self._steps = [s for s in registry.steps.values() if s.kind in ("event", "cron")]
        # A `def` handler needs a thread of its step's pool: never claim more than it has.
        self._limits = {
            s.name: min(
                getattr(s.config, "concurrency", None) or settings.concurrency,
                settings.concurrency if s.is_async else settings.sync_threads,
            )
            for s in self._steps
        }
        self._timeouts: dict[str, float] = {
            s.name: float(getattr(s.config, "timeout", settings.lease_seconds)) for s in self._steps
        }
        self._running: dict[str, int] = {s.name: 0 for s in self._steps}
        self.claim_failure: str | None = None
        """Why claims have failed STALLED times in a row (until one succeeds): the loop goes
        on, so /readyz says it, or a store that takes writes but not claims stalls silently."""
        # Settling a keyed delivery lets the next one of its key go: claim it in that commit.
        self._keyed = {
            s.name for s in self._steps if getattr(s.config, "concurrency_per_key", None)
        }
        # Steps whose claim can only come back short because none is left (no per-key or rate
        # limit holding some back), and those of them the last claim emptied.
        self._plain = {
            s.name
            for s in self._steps
            if not getattr(s.config, "concurrency_per_key", None)
            and not getattr(s.config, "rate_limit", None)
        }
        self._drained: set[str] = set()
        self._reserved: dict[str, int] = dict.fromkeys(self._running, 0)
        self._reserved_total = 0
        # (step, id) of every run in flight, with its task; a run leaves it when its outcome
        # is handed to the writer, so the capacity it held is never counted twice.
        self._tasks: dict[tuple[str, str], tuple[asyncio.Task[None], Delivery]] = {}
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
        drained, self._drained = self._drained, set()
        if steps is None:
            self._sweep_now = True
        else:
            # A step the commit's own claim emptied has nothing more to claim: claiming again
            # would be an empty transaction per webhook request.
            self._hint |= (steps - drained) & self._running.keys()
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
            await asyncio.wait([t for t, _ in self._tasks.values()], timeout=grace)
        leftover = list(self._tasks.values())
        for task in {t for t, _ in leftover}:
            task.cancel()
        if leftover:
            await asyncio.gather(*(t for t, _ in leftover), return_exceptions=True)
            for task, d in leftover:  # a task cancelled before it began never ran its cleanup
                if self._tasks.get((d.step, d.id), (None,))[0] is task:
                    self.runner.deadlines.forget(task)
                    self._finished(d)
            await self.writer.flush()
            try:
                await self.backend.release([d for _, d in leftover])
            except BackendError as exc:
                log.warning(
                    "could not release %d deliveries (they return after their lease): %s",
                    len(leftover),
                    exc,
                )
        await self.writer.flush()

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self) -> None:
        last_sweep = 0.0
        failures = 0
        while not self._stopping:
            now = time.monotonic()
            sweep = self._sweep_now or now - last_sweep >= self.settings.poll_interval
            self._sweep_now = False
            candidates = (
                self._steps
                if sweep
                else [s for s in self._steps if s.name in self._hint or s.name in self._more]
            )
            self._hint.clear()
            wants = self._reserve(candidates)
            claimed: list[Delivery] = []
            if wants:
                try:
                    claimed = await self.backend.claim(wants, self._leases(wants))
                    failures = 0
                    self.claim_failure = None
                except Exception as exc:  # even a bug in a backend must not end the loop
                    self.accept(wants, [])
                    failures += 1
                    if failures >= STALLED:
                        self.claim_failure = (
                            f"the engine cannot claim work ({failures} failures in a row): "
                            f"{type(exc).__name__}: {exc}"
                        )
                    # Short retries, so work resumes soon after a long outage ends; the log
                    # line thins out instead (1st, 2nd, 4th, 8th... failure).
                    delay = min(2.0, 0.2 * 2 ** min(failures, 8))
                    if failures & (failures - 1) == 0:
                        log.error(
                            "cannot claim work (%d failures in a row): %s: %s",
                            failures,
                            type(exc).__name__,
                            exc,
                        )
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
    def plan(self, batch: Batch, settling: int = 0) -> tuple[dict[str, int], dict[str, float]]:
        """What to claim in the same commit as `batch`: work for the steps it feeds, so a
        chain moves on without a separate claim round trip. `settling` is the writer backlog
        that this commit clears: the capacity it held is free once the commit is."""
        if self._loop_task is None or self._stopping:
            return {}, {}
        fed = {s for m in batch.messages for s in m.steps} | self._more
        if self._keyed:
            fed |= {o.delivery.step for o in batch.outcomes} & self._keyed
        wants = self._reserve([s for s in self._steps if s.name in fed], settling)
        return wants, self._leases(wants)

    def _reserve(self, steps: list[Step], settling: int = 0) -> dict[str, int]:
        """Book capacity before claiming, so concurrent claims never exceed a step's limit.
        The process-wide budget is soft: each step may claim up to what is free, so a step
        with no work never starves the others."""
        free = (
            self.settings.concurrency
            - len(self._tasks)
            - self._reserved_total
            - self.writer.backlog
            + settling
        )
        self._throttled = free <= 0
        wants: dict[str, int] = {}
        if self._throttled:
            return wants
        for step in steps:
            name = step.name
            n = min(
                self._limits[name] - self._running[name] - self._reserved[name],
                free,
                self.settings.batch_size,
            )
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
        batches: dict[str, list[Delivery]] = {}
        for d in claimed:
            counts[d.step] = counts.get(d.step, 0) + 1
            if (d.step, d.id) in self._tasks:
                # Its lease ran out while our run of it still goes on (a `def` handler stuck
                # past its timeout): running it twice at once is what the lease prevents.
                log.warning(
                    "%s: delivery %s is still running here; not starting it again", d.step, d.id
                )
                continue
            batches.setdefault(d.step, []).append(d)
        for name, ds in batches.items():
            self._running[name] += len(ds)
            task = asyncio.create_task(self._run_batch(ds))
            for d in ds:
                self._tasks[(d.step, d.id)] = (task, d)
            # The runs of one step in this claim start together: one timer keeps their limit.
            self.runner.deadlines.arm(self._timeouts[name], [task])
        self._more = {s for s, n in wants.items() if counts.get(s, 0) >= n} | (
            self._more - wants.keys()
        )
        self._drained = {s for s, n in wants.items() if 0 < counts.get(s, 0) < n} & self._plain

    def _leases(self, wants: dict[str, int]) -> dict[str, float]:
        # A lease outlives the step's time limit, so a slow but healthy run is not re-delivered.
        return {name: max(self.settings.lease_seconds, self._timeouts[name] + 5) for name in wants}

    # -- running a claimed batch -------------------------------------------------------------
    async def _run_batch(self, ds: list[Delivery]) -> None:
        """Run the deliveries of one step's claim in this one task while their handlers finish
        without awaiting (as the chain's do): no task per run. The first run that awaits keeps
        this task as its host to the end (a coroutine bound to a task must not move) and the
        rest of the batch get tasks of their own, so they still run concurrently."""
        task = self._tasks[(ds[0].step, ds[0].id)][0]
        deadlines = self.runner.deadlines
        left = 0
        try:
            for left, d in enumerate(ds, 1):
                ctx = contextvars.copy_context()  # each run its own, as a task has
                coro = self.runner.run_delivery(d, task)
                try:
                    first = ctx.run(coro.send, None)
                except StopIteration:
                    self._finished(d)
                    continue
                except Exception:  # a bug outside the handler: it must not end the batch
                    self._finished(d)
                    log.exception("%s: the run of delivery %s failed", d.step, d.id)
                    continue
                except BaseException:
                    self._finished(d)
                    raise
                for rest in ds[left:]:
                    key = (rest.step, rest.id)
                    other = asyncio.create_task(self._execute(rest, key))
                    self._tasks[key] = (other, rest)
                    deadlines.join(other, task)
                left = len(ds)
                try:
                    await Resume(coro, first, ctx)
                finally:
                    self._finished(d)
                break
        finally:
            deadlines.forget(task)
            for d in ds[left:]:  # cancelled before they ran (shutdown): stop() releases them
                self._finished(d)

    async def _execute(self, d: Delivery, key: tuple[str, str]) -> None:
        task = self._tasks[key][0]
        try:
            await self.runner.run_delivery(d, task)
        finally:
            self.runner.deadlines.forget(task)
            self._finished(d)

    def _finished(self, d: Delivery) -> None:
        # When the run hands its outcome over, not in a done callback: the writer may commit
        # the outcome before such a callback runs, and would find its capacity still taken.
        del self._tasks[(d.step, d.id)]
        self._running[d.step] -= 1
        if d.step in self._more or self._throttled:
            self._wake.set()
