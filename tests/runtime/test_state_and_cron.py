"""State and cron contract, run against every backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

CRON = {
    "report_step.py": """
        config = {"type": "cron", "name": "Report", "cron": "0 9 * * *",
                  "timezone": "Europe/Berlin", "emits": []}

        async def handler(ctx):
            await ctx.state.increment("cron", "runs")
    """,
}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def test_increment_and_update_lose_nothing_under_concurrency(make_app):
    async with make_app({}) as app:
        await asyncio.gather(*(app.state.increment("c", "n") for _ in range(50)))
        await asyncio.gather(
            *(app.state.update("c", "items", lambda v, i=i: [*(v or []), i]) for i in range(50))
        )
        assert await app.state.get("c", "n") == 50
        assert sorted(await app.state.get("c", "items")) == list(range(50))
        assert await app.state.increment("c", "n", 2.5) == 52.5


async def test_state_get_set_list_delete_clear(make_app):
    async with make_app({}) as app:
        state = app.state
        await state.set("users", "a", {"name": "Ann"})
        await state.set("users", "b", [1, 2])
        assert await state.get("users", "a") == {"name": "Ann"}
        assert await state.get("users", "zzz", "none") == "none"
        assert await state.list("users") == {"a": {"name": "Ann"}, "b": [1, 2]}
        assert await state.delete("users", "a") is True
        assert await state.delete("users", "a") is False
        assert await state.clear("users") == 1
        assert await state.list("users") == {}
        with pytest.raises(TypeError, match="not JSON-serialisable"):
            await state.set("users", "x", object())


async def test_ttl_expires_keys(make_app):
    async with make_app({}) as app:
        await app.state.set("sessions", "short", "x", ttl=0.2)
        await app.state.set("sessions", "long", "y", ttl=60)
        assert await app.state.get("sessions", "short") == "x"
        await asyncio.sleep(0.4)
        assert await app.state.get("sessions", "short") is None
        assert await app.state.list("sessions") == {"long": "y"}
        remaining = await app.state.ttl("sessions", "long")
        assert remaining is not None and 0 < remaining <= 60


async def test_cron_fires_once_per_tick_across_two_runtimes(make_app):
    clock = [ts("2026-03-02T07:59:00")]  # 08:59 in Berlin (UTC+1)
    first = make_app(CRON, clock=lambda: clock[0])
    second = make_app(
        CRON, clock=lambda: clock[0], db=first.settings.db, redis_prefix=first.settings.redis_prefix
    )
    async with first, second:
        for app in (first, second):  # this test drives the ticks itself
            await app.runtime.cron.stop()
        assert await first.runtime.cron.tick() == []
        clock[0] = ts("2026-03-02T08:00:05")  # 09:00:05 in Berlin
        fired = await asyncio.gather(first.runtime.cron.tick(), second.runtime.cron.tick())
        assert sorted(fired, key=len) == [[], ["Report"]]
        assert await first.runtime.cron.tick() == []
        await first.drain()
        await second.drain()
        assert await first.state.get("cron", "runs") == 1


async def test_cron_after_downtime_fires_the_missed_tick_once(make_app):
    clock = [ts("2026-03-02T07:59:00")]
    async with make_app(CRON, clock=lambda: clock[0]) as app:
        await app.runtime.cron.stop()  # this test drives the ticks itself
        assert await app.runtime.cron.tick() == []  # a new step waits for its first tick
        clock[0] = ts("2026-03-02T08:00:01")
        assert await app.runtime.cron.tick() == ["Report"]
        clock[0] = ts("2026-03-07T12:00:00")  # five days later: five ticks missed
        assert await app.runtime.cron.tick() == ["Report"]
        assert await app.runtime.cron.tick() == []
        await app.drain()
        assert await app.state.get("cron", "runs") == 2


async def test_cron_can_be_triggered_by_hand(make_app):
    async with make_app(CRON) as app:
        await app.run_cron("Report")
        await app.drain()
        assert await app.state.get("cron", "runs") == 1
