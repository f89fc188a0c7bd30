"""Calling a handler: async directly, plain `def` in its step's own thread pool, both under a
time limit.

An engine run's time limit is kept by `Deadlines`: one timer per claimed batch of a step (its
runs start together and share the step's timeout) cancels the runs still going when it fires,
instead of an `asyncio.timeout` and a timer handle per run. An API run has its own timeout.

Each step with a plain `def` handler gets its own pool of `STEPLINE_SYNC_THREADS` threads, so a
step whose handlers block cannot take the threads of another. A thread cannot be stopped from
outside: when a sync handler runs past its timeout the run fails at once, but its thread stays
busy until the handler returns, and `HandlerTimeout.running` lets the caller wait for that before
the delivery may run again. The threads are daemons, so a handler that never returns cannot
keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import queue
import threading
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future
from typing import Any

from app.context import Context, SyncContext
from app.registry import Step

__all__ = ["Deadlines", "HandlerTimeout", "Resume", "SyncPools", "invoke", "timed_out"]


class HandlerTimeout(Exception):
    """The handler ran past its step's `timeout`. For a plain `def` handler whose thread still
    runs, `running` is the future that completes when it returns."""

    def __init__(self, message: str, running: Future[Any] | None = None) -> None:
        super().__init__(message)
        self.running = running


class _Pool:
    """Up to `size` daemon threads, started on demand."""

    def __init__(self, name: str, size: int) -> None:
        self._name = name
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads = 0
        self._lock = threading.Lock()
        self.busy = 0

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            self.busy += 1
        self._jobs.put((future, fn))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self._size:
                    self._threads += 1
                    threading.Thread(
                        target=self._work,
                        daemon=True,
                        name=f"stepline-sync-{self._name}-{self._threads}",
                    ).start()
        return future

    def _work(self) -> None:
        while True:
            future, fn = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self.busy -= 1
            self._idle.release()


class SyncPools:
    """One thread pool per step with a plain `def` handler."""

    def __init__(self, threads: int = 8) -> None:
        self.threads = threads
        self._pools: dict[str, _Pool] = {}

    def pool(self, step: str) -> _Pool:
        pool = self._pools.get(step)
        if pool is None:
            pool = self._pools[step] = _Pool(step, self.threads)
        return pool

    def busy(self, step: str) -> int:
        """Threads of `step` still running a handler (timed-out ones included)."""
        pool = self._pools.get(step)
        return pool.busy if pool is not None else 0


_default_pools = SyncPools()


class _Watched:
    """The runs of one claimed batch still going, and the timer of their deadline."""

    __slots__ = ("handle", "tasks")

    def __init__(self, tasks: set[asyncio.Task[Any]]) -> None:
        self.tasks = tasks
        self.handle: asyncio.TimerHandle | None = None


class Resume:
    """Await the rest of `coro`, which was started by hand (`ctx.run(coro.send, None)`) and
    yielded `first`: the task awaiting this becomes its host for good, so whatever the
    coroutine bound to its task (`asyncio.timeout`, an anyio cancel scope) stays right. Each
    step runs in `ctx`, the run's own context, as a task of its own would have it."""

    __slots__ = ("coro", "ctx", "first")

    def __init__(
        self, coro: Coroutine[Any, Any, Any], first: Any, ctx: contextvars.Context
    ) -> None:
        self.coro = coro
        self.first = first
        self.ctx = ctx

    def __await__(self) -> Generator[Any, Any, Any]:
        value, run, coro = self.first, self.ctx.run, self.coro
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # a cancellation, thrown into the task
                try:
                    value = run(coro.throw, exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = run(coro.send, sent)
                except StopIteration as stop:
                    return stop.value


class Deadlines:
    """Time limits of engine runs: one timer per batch of runs that share a deadline. A
    finished run leaves its batch at once, and the last one cancels the timer, so nothing
    keeps finished runs alive until their deadline."""

    def __init__(self) -> None:
        self._expired: set[asyncio.Task[Any]] = set()
        self._batch: dict[asyncio.Task[Any], _Watched] = {}

    def arm(self, timeout: float, tasks: list[asyncio.Task[Any]]) -> None:
        """Cancel those of `tasks` still running in `timeout` seconds (as a time limit)."""
        watched = _Watched(set(tasks))
        watched.handle = asyncio.get_running_loop().call_later(timeout, self._fire, watched)
        for task in tasks:
            self._batch[task] = watched

    def _fire(self, watched: _Watched) -> None:
        for task in list(watched.tasks):
            if not task.done():
                self._expired.add(task)
                task.cancel()

    def join(self, task: asyncio.Task[Any], like: asyncio.Task[Any]) -> None:
        """`task` runs part of the batch of `like` and shares its deadline."""
        watched = self._batch.get(like)
        if watched is not None:
            watched.tasks.add(task)
            self._batch[task] = watched

    def forget(self, task: asyncio.Task[Any]) -> None:
        """`task` has ended (a handler may have swallowed its cancellation)."""
        self._expired.discard(task)
        watched = self._batch.pop(task, None)
        if watched is not None:
            watched.tasks.discard(task)
            if not watched.tasks and watched.handle is not None:
                watched.handle.cancel()

    def expired(self, task: asyncio.Task[Any] | None) -> bool:
        """`task` was cancelled by its deadline (and no longer is): its handler timed out."""
        if task is None or task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0


async def invoke(
    step: Step,
    ctx: Context,
    *args: Any,
    timeout: float | None,
    pools: SyncPools | None = None,
    deadlines: Deadlines | None = None,
) -> Any:
    """Run `step.handler(*args, ctx)`; a sync handler gets a blocking `SyncContext`. With
    `deadlines`, the caller armed the time limit there (`timeout` is then only its value)."""
    running: Future[Any] | None = None
    if step.is_async:
        call: Any = step.handler(*args, ctx)
    else:
        loop = asyncio.get_running_loop()
        fn = functools.partial(step.handler, *args, SyncContext(ctx, loop))
        running = (pools or _default_pools).pool(step.name).submit(fn)
        call = asyncio.wrap_future(running)
    if timeout is None:
        return await call
    if deadlines is not None:
        try:
            return await call
        except asyncio.CancelledError:
            if not deadlines.expired(asyncio.current_task()):
                raise
            raise timed_out(step.name, timeout, running) from None
    try:
        # asyncio.timeout() wraps the running task; wait_for() would start another task.
        async with asyncio.timeout(timeout):
            return await call
    except TimeoutError:
        raise timed_out(step.name, timeout, running) from None


def timed_out(step: str, timeout: float, running: Future[Any] | None) -> HandlerTimeout:
    still = running if running is not None and not running.done() else None
    tail = "; its thread is still running and the delivery waits for it" if still else ""
    return HandlerTimeout(
        f"{step} did not finish within {timeout:g} s{tail} (raise "
        "`timeout` in its config if it needs longer)",
        still,
    )
