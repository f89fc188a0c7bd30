"""The event-loop watchdog: a blocking call inside an `async def` handler stalls every run and
request of the process, and from inside the loop nothing can notice. A thread watches a
heartbeat the loop sets; when the loop misses it for longer than `STEPLINE_LOOP_BLOCK_MS`, the
thread logs which step's run holds the loop (while it still does), and the run gets a log line
saying how long it blocked. A run that so overran its timeout is failed by the run path
(`app.run`), with that as the reason.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from app.middleware import Middleware, Run, RunOutcome

__all__ = ["BLOCKED_MS", "LoopWatchdog"]

BLOCKED_MS = "blocked_ms"
"""The `Run.notes` key under which the watchdog records how long a run held the loop."""

log = logging.getLogger("stepline.watchdog")


class LoopWatchdog(Middleware):
    """Middleware that knows which run each task is executing; started with the first run."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold = threshold_ms / 1000
        self._interval = max(self.threshold / 4, 0.01)
        self._runs: dict[asyncio.Task[object], Run] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat = time.monotonic()
        self._thread: threading.Thread | None = None

    def before_run(self, run: Run) -> None:
        # The engine names the task of its runs (asking asyncio costs more, twice per run).
        task = run.task or asyncio.current_task()
        if task is None:
            return
        loop = task.get_loop()
        if self._loop is not loop:
            self._watch(loop)
        self._runs[task] = run

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        task = run.task or asyncio.current_task()
        if task is not None and self._runs.get(task) is run:
            del self._runs[task]
        blocked = run.notes.get(BLOCKED_MS)
        if blocked:
            run.ctx.logger.warning(
                f"blocked the event loop for {blocked:.0f} ms: a blocking call inside "
                "`async def` stalls every run of the process; make the handler a plain `def`, "
                "or await a non-blocking call",
                blocked_ms=round(blocked),
            )

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._beat = time.monotonic()
        loop.call_soon(self._heartbeat)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._check, name="stepline-watchdog", daemon=True
            )
            self._thread.start()

    def _heartbeat(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        self._beat = time.monotonic()
        loop.call_later(self._interval, self._heartbeat)

    def _check(self) -> None:
        reported: float | None = None
        while True:
            time.sleep(self._interval)
            loop = self._loop
            if loop is None or loop.is_closed():
                self._thread = None
                return
            if not loop.is_running():
                continue
            beat = self._beat
            stalled = time.monotonic() - beat
            if stalled <= self.threshold:
                continue
            task = asyncio.current_task(loop)  # a dict lookup: safe from another thread
            run = self._runs.get(task) if task is not None else None
            if run is not None:
                run.notes[BLOCKED_MS] = stalled * 1000
            if reported == beat:
                continue  # one line per stall
            reported = beat
            if run is not None:
                log.warning(
                    "the event loop is blocked (%.0f ms so far) by a run of %s "
                    "(trace %s, attempt %d)",
                    stalled * 1000,
                    run.name,
                    run.trace_id,
                    run.attempt,
                )
            else:
                log.warning(
                    "the event loop is blocked (%.0f ms so far) outside any handler run (task %s)",
                    stalled * 1000,
                    task.get_name() if task is not None else "none",
                )
