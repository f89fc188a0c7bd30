"""`stepline worker`: handlers and cron without HTTP, stopped gracefully by SIGTERM/SIGINT.

Workers started by `stepline start --workers N` die with their parent, however it ends: the
parent forwards SIGTERM/SIGINT and waits for them; if the parent is killed outright, Linux
sends each worker SIGTERM (PR_SET_PDEATHSIG), and every worker also checks once a second that
its parent is still the one that started it (STEPLINE_PARENT_PID) and stops when it is not.
The server's `/readyz` names every worker process that is not running (`WorkerPool.readiness`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from app.errors import SteplineError
from app.registry import load_registry
from app.runtime import Runtime
from app.settings import Settings

__all__ = [
    "PARENT_ENV",
    "WorkerPool",
    "active_pool",
    "metrics_dir",
    "run_worker",
    "stop_on_signals",
]

log = logging.getLogger("stepline.worker")

PARENT_ENV = "STEPLINE_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when our parent dies (elsewhere `_watch_parent` covers it; a
    parent that died before this call is caught by its first check)."""
    if os.environ.get(PARENT_ENV):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _watch_parent(stop: asyncio.Event) -> None:
    expected = os.environ.get(PARENT_ENV)
    if not expected or not expected.isdigit():
        return
    while not stop.is_set():
        if os.getppid() != int(expected):
            log.warning("the process that started this worker (pid %s) is gone; stopping", expected)
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def run_worker(settings: Settings) -> int:
    registry = load_registry(settings.steps)
    for error in registry.errors:
        log.error("step not loaded: %s", error)
    if registry.errors:
        return 1

    _die_with_parent()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        parent = asyncio.create_task(_watch_parent(stop))
        runtime = Runtime(settings, registry=registry)
        start = asyncio.create_task(runtime.start(wait=True))
        await asyncio.wait(
            [start, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if not start.done():
            start.cancel()
            return 0
        try:
            start.result()
        except SteplineError as exc:
            # One line, as `stepline start` reports it, not a traceback.
            log.error("cannot start: %s", exc)
            parent.cancel()
            return 1
        log.info("worker running %d steps on %s", len(registry.steps), settings.backend)
        await stop.wait()
        parent.cancel()
        log.info("stopping: running handlers get %.0f s", settings.shutdown_grace)
        await runtime.stop()
        return 0

    return asyncio.run(main())


_active: WorkerPool | None = None


def active_pool() -> WorkerPool | None:
    """The pool `stepline start --workers N` runs in this process, while it runs."""
    return _active


def _how(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class WorkerPool:
    """`stepline start --workers N`: N `stepline worker` processes, restarted when one dies."""

    def __init__(self, count: int, grace: float, *, poll: float = 1.0) -> None:
        self.count = count
        self.grace = grace
        self.poll = poll
        self.children: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._restarts: list[float] = []
        self._holding = False  # over the restart limit; said so once
        self._watcher = threading.Thread(target=self._watch, name="stepline-workers", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env={**os.environ, PARENT_ENV: str(os.getpid())},
        )

    def start(self) -> None:
        global _active
        self.children = [self._spawn() for _ in range(self.count)]
        if self.children:
            _active = self
            self._watcher.start()

    async def readiness(self) -> list[str]:
        """Every worker process that is not running, and what happens next (for `/readyz`)."""
        problems = []
        for i, child in enumerate(list(self.children), 1):
            code = child.poll()
            if code is None:
                continue
            if code == 0:
                then = "it stopped by itself and is not restarted: restart `stepline start`"
            elif self._holding:
                then = "too many restarts in the last minute: it is restarted once they slow down"
            else:
                then = "another is being started"
            problems.append(f"worker {i} of {self.count} (pid {child.pid}) {_how(code)}; {then}")
        return problems

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll):
            for i, child in enumerate(self.children):
                code = child.poll()
                # Exit 0 is a graceful stop (SIGTERM to the process group): not a crash.
                if code is None or code == 0 or self._stopping.is_set():
                    continue
                now = time.monotonic()
                # Only restarts count: a dead worker seen again on every poll is not one, or
                # the limit, once reached, would hold for ever and log every second.
                self._restarts = [t for t in self._restarts if now - t < 60]
                if len(self._restarts) >= 5 * self.count:
                    if not self._holding:
                        log.error(
                            "worker %d exited with %s; %d restarts in the last minute, so "
                            "no more until the oldest is a minute old (see its log above)",
                            child.pid,
                            code,
                            len(self._restarts),
                        )
                    self._holding = True
                    continue
                self._holding = False
                self._restarts.append(now)
                log.error("worker %d exited with %s; starting another", child.pid, code)
                self.children[i] = self._spawn()

    def stop(self) -> None:
        global _active
        self._stopping.set()
        if _active is self:
            _active = None
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=self.grace + 5)
            except subprocess.TimeoutExpired:
                child.kill()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Make SIGTERM/SIGINT end the block with SystemExit(0), so `finally` clauses (stopping the
    workers) run. Uvicorn handles both while it serves and, once stopped, raises the signal
    again for the handler it found: this one, not the default that would kill the process
    before the workers were stopped."""

    def graceful(sig: int, frame: object) -> None:
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, graceful) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def metrics_dir(shared: bool) -> Iterator[None]:
    """With worker processes, every process writes its counters to one directory that the
    server's /metrics adds up (prometheus-client's multiprocess mode). Set before
    prometheus-client is imported; an operator's own PROMETHEUS_MULTIPROC_DIR is kept."""
    if not shared or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="stepline-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)
