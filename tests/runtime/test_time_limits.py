"""Timeouts that bound: a blocked `def` handler holds only its own step's threads and is never
run again while its thread still runs; a blocking `async def` handler is named and failed."""

from __future__ import annotations

import asyncio
import logging
import time

from app.testing import Harness

BLOCKING = {
    "blocker_step.py": """
        import threading

        RELEASE = threading.Event()
        config = {"type": "event", "name": "Blocker", "subscribes": ["block"], "retries": 3,
                  "timeout": 0.2, "concurrency": 20}

        def handler(data, ctx):
            ctx.state.increment("started", "blocker")
            RELEASE.wait(30)
    """,
    "healthy_step.py": """
        config = {"type": "event", "name": "Healthy", "subscribes": ["work"], "timeout": 5}

        def handler(data, ctx):
            ctx.state.increment("done", "healthy")
    """,
}


async def _until(check, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_blocked_sync_handlers_do_not_starve_others_nor_rerun_while_running(make_app):
    h: Harness = make_app(BLOCKING, sync_threads=4)
    release = h.registry.steps["Blocker"].handler.__globals__["RELEASE"]
    try:
        async with h:
            for i in range(20):
                await h.emit("block", {"i": i})
            for i in range(10):
                await h.emit("work", {"i": i})

            async def healthy_done() -> bool:
                return await h.state.get("done", "healthy") == 10

            await _until(healthy_done, "the 10 healthy runs")

            async def four_timed_out() -> bool:
                spans = [s for s in await h.spans() if s.step == "Blocker"]
                return len(spans) >= 4

            await _until(four_timed_out, "the first Blocker runs to time out")
            # Time for the backoff (a few ms here) to pass many times over: the timed-out
            # runs must not be retried, nor new ones started, while their threads are busy.
            await asyncio.sleep(0.5)
            assert await h.state.get("started", "blocker") == 4
            spans = [s for s in await h.spans() if s.step == "Blocker"]
            assert all(s.status == "retrying" for s in spans)
            assert all("thread is still running" in (s.error or "") for s in spans)
            assert await h.dead_letters() == []
            release.set()
            await h.drain(timeout=30)
            assert await h.dead_letters() == []
            started = await h.state.get("started", "blocker")
            spans = [s for s in await h.spans() if s.step == "Blocker"]
            timed_out = [s for s in spans if "did not finish" in (s.error or "")]
            # Every event ran to the end; a run beyond the first of its event only ever follows
            # an attempt that timed out (the first four, and any that a loaded machine slows
            # past 0.2 s after the release), never one started while its thread still ran.
            assert len([s for s in spans if s.status == "ok"]) == 20
            assert started == len(spans) == 20 + len(timed_out)
    finally:
        release.set()


STALLING = {
    "stall_step.py": """
        import time

        config = {"type": "event", "name": "Stall", "subscribes": ["stall"], "retries": 1,
                  "timeout": 0.2}

        async def handler(data, ctx):
            time.sleep(0.6)  # a blocking call in async def: the loop cannot cancel it
    """,
}


async def test_a_blocking_async_handler_is_named_and_fails_with_the_real_reason(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="stepline.watchdog"):
        async with make_app(STALLING, loop_block_ms=100) as h:
            await h.emit("stall", {})
            await h.drain()
            (span,) = [s for s in await h.spans() if s.step == "Stall"]
            assert span.status == "failed"
            assert "without giving the event loop back" in (span.error or "")
            logs = [e.message for e in await h.logs() if e.step == "Stall"]
            assert any(m.startswith("blocked the event loop for") for m in logs)
    watchdog = [r.getMessage() for r in caplog.records if r.name == "stepline.watchdog"]
    assert any("by a run of Stall" in m for m in watchdog), watchdog
