"""Calling a handler: async directly, plain `def` in its step's own thread pool, both under a
time limit.

Each step with a plain `def` handler gets its own pool of `STEPLINE_SYNC_THREADS` threads, so a
step whose handlers block cannot take the threads of another. A thread cannot be stopped from
outside: when a sync handler runs past its timeout the run fails at once, but its thread stays
busy until the handler returns, and `HandlerTimeout.running` lets the caller wait for that before
the delivery may run again. The threads are daemons, so a handler that never returns cannot
keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from app.context import Context, SyncContext
from app.registry import Step

__all__ = ["HandlerTimeout", "SyncPools", "invoke"]


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


async def invoke(
    step: Step, ctx: Context, *args: Any, timeout: float | None, pools: SyncPools | None = None
) -> Any:
    """Run `step.handler(*args, ctx)`; a sync handler gets a blocking `SyncContext`."""
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
    try:
        # asyncio.timeout() wraps the running task; wait_for() would start another task.
        async with asyncio.timeout(timeout):
            return await call
    except TimeoutError:
        still = running if running is not None and not running.done() else None
        tail = "; its thread is still running and the delivery waits for it" if still else ""
        raise HandlerTimeout(
            f"{step.name} did not finish within {timeout:g} s{tail} (raise "
            "`timeout` in its config if it needs longer)",
            still,
        ) from None
