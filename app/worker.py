"""`stepline worker`: handlers and cron without HTTP, stopped gracefully by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from app.registry import load_registry
from app.runtime import Runtime
from app.settings import Settings

__all__ = ["run_worker"]

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
