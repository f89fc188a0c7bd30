"""`stepline worker`: handlers and cron without HTTP, stopped gracefully by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from app.registry import load_registry
from app.runtime import Runtime
from app.settings import Settings

__all__ = ["WorkerPool", "run_worker"]

log = logging.getLogger("stepline.worker")


def run_worker(settings: Settings) -> int:
    registry = load_registry(settings.steps)
    for error in registry.errors:
        log.error("step not loaded: %s", error)
    if registry.errors:
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runtime = Runtime(settings, registry=registry)
        start = asyncio.create_task(runtime.start(wait=True))
        await asyncio.wait([start, asyncio.create_task(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            return
        start.result()
        log.info("worker running %d steps on %s", len(registry.steps), settings.backend)
        await stop.wait()
        log.info("stopping: running handlers get %.0f s", settings.shutdown_grace)
        await runtime.stop()

    asyncio.run(main())
    return 0


class WorkerPool:
    """`stepline start --workers N`: N `stepline worker` processes, restarted when one dies."""

    def __init__(self, count: int, grace: float) -> None:
        self.count = count
        self.grace = grace
        self.children: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._restarts: list[float] = []
        self._watcher = threading.Thread(target=self._watch, name="stepline-workers",
                                         daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "app", "worker"], env={**os.environ})

    def start(self) -> None:
        self.children = [self._spawn() for _ in range(self.count)]
        if self.children:
            self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for i, child in enumerate(self.children):
                code = child.poll()
                # Exit 0 is a graceful stop (SIGTERM to the process group): not a crash.
                if code is None or code == 0 or self._stopping.is_set():
                    continue
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < 60] + [now]
                if len(self._restarts) > 5 * self.count:
                    log.error("worker %d exited with %s; too many restarts in a minute, "
                              "not restarting (see its log above)", child.pid, code)
                    continue
                log.error("worker %d exited with %s; starting another", child.pid, code)
                self.children[i] = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=self.grace + 5)
            except subprocess.TimeoutExpired:
                child.kill()
