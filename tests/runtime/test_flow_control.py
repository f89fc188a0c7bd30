"""Flow control contract, run against every backend: delayed emits (`delay=`, `at=`) wait
durably for their time, read from the runtime's clock, which these tests move by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.types import Batch
from tests.support import until

FLOW = {
    "kick_step.py": """
        from datetime import datetime

        config = {"type": "event", "name": "Kick", "subscribes": ["kick"], "emits": ["later"]}

        async def handler(data, ctx):
            if "at" in data:
                await ctx.emit("later", {"n": data["n"]}, at=datetime.fromisoformat(data["at"]))
            else:
                await ctx.emit("later", {"n": data["n"]}, delay=data["delay"])
    """,
    "later_step.py": """
        config = {"type": "event", "name": "Later", "subscribes": ["later"], "emits": []}

        async def handler(data, ctx):
            await ctx.state.update("seen", "n", lambda v: [*(v or []), data["n"]], None)
    """,
}

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def spans_of(app: Any, step: str) -> int:
    await app.runtime.writer.flush()
    return len([s for s in await app.spans(step=step) if s.status == "ok"])


async def scheduled(app: Any) -> list[dict[str, Any]]:
    """What the Workbench's Events view reads: deliveries waiting for their time."""
    r = await app.get("/_stepline/events")
    assert r.status_code == 200
    return [q for q in r.json()["queued"] if q["status"] == "scheduled"]


async def test_delayed_emits_wait_for_their_time_and_show_as_scheduled(make_app):
    clock = [START.timestamp()]
    async with make_app(FLOW, clock=lambda: clock[0]) as app:
        await app.emit("kick", {"n": 1, "delay": 600})
        await app.emit("kick", {"n": 2, "at": (START + timedelta(minutes=20)).isoformat()})
        await until("two Kick runs", lambda: _at_least(spans_of(app, "Kick"), 2))

        waiting = await scheduled(app)
        assert sorted((q["step"], q["data"]["n"], q["due"]) for q in waiting) == [
            ("Later", 1, START.timestamp() + 600),
            ("Later", 2, START.timestamp() + 1200),
        ]
        stats = (await app.get("/_stepline/events")).json()["stats"]
        assert stats["Later"]["scheduled"] == 2
        # Nothing is due yet: a claim (as any worker process would make) gets nothing.
        assert await app.runtime.backend.claim({"Later": 10}, {"Later": 5.0}) == []

        clock[0] = START.timestamp() + 601
        app.runtime.engine.wake(None)
        assert await until("the 10-minute emit", lambda: app.state.get("seen", "n")) == [1]
        assert [q["data"]["n"] for q in await scheduled(app)] == [2]
        assert await app.runtime.backend.claim({"Later": 10}, {"Later": 5.0}) == []

        clock[0] = START.timestamp() + 1201
        await app.drain()
        assert await app.state.get("seen", "n") == [1, 2]
        assert await scheduled(app) == []


async def _at_least(count: Awaitable[int], n: int) -> bool:
    return await count >= n


async def test_a_delayed_emit_survives_a_restart(make_app):
    clock = [START.timestamp()]
    first = make_app(FLOW, clock=lambda: clock[0])
    async with first:
        await first.emit("kick", {"n": 7, "delay": 3600})
        await until("the Kick run", lambda: spans_of(first, "Kick"))
        assert len(await scheduled(first)) == 1
    clock[0] += 3601
    second = make_app(
        FLOW, clock=lambda: clock[0], db=first.settings.db, redis_prefix=first.settings.redis_prefix
    )
    async with second:
        await second.drain()
        assert await second.state.get("seen", "n") == [7]


async def test_emit_refuses_an_ambiguous_or_negative_time(make_app):
    async with make_app(FLOW) as app:
        with pytest.raises(ValueError, match="no time zone"):
            await app.emit("later", {"n": 1}, at=datetime(2026, 3, 2, 8, 0))
        with pytest.raises(ValueError, match=">= 0"):
            await app.emit("later", {"n": 1}, delay=-5)
        with pytest.raises(TypeError, match=r"delay=\.\.\. or at="):
            await app.emit("later", {"n": 1}, delay=5, at=START)
        with pytest.raises(TypeError, match="seconds"):
            await app.emit("later", {"n": 1}, delay="5")  # type: ignore[arg-type]
        # A time already past is simply due at once.
        await app.emit("later", {"n": 3}, at=START - timedelta(days=1))
        await app.drain()
        assert await app.state.get("seen", "n") == [3]


DEBOUNCED = {
    "quiet_step.py": """
        config = {"type": "event", "name": "Quiet", "subscribes": ["push"], "emits": [],
                  "key": "pr", "concurrency_per_key": 1,
                  "debounce": {"seconds": 30, "max_wait": 120}}

        async def handler(data, ctx):
            await ctx.state.update("heads", str(data["pr"]), lambda v: [*(v or []), data["head"]])
    """,
}


async def test_debounce_runs_a_burst_once_on_its_last_delivery(make_app):
    t0 = START.timestamp()
    clock = [t0]
    async with make_app(DEBOUNCED, clock=lambda: clock[0]) as app:
        for n, head in enumerate(["a", "b", "c"]):  # three pushes in quick succession
            clock[0] = t0 + n
            await app.emit("push", {"pr": 1, "head": head})
        await app.emit("push", {"pr": 2, "head": "x"})
        waiting = {q["data"]["pr"]: (q["data"]["head"], q["due"]) for q in await scheduled(app)}
        assert waiting == {1: ("c", t0 + 2 + 30), 2: ("x", t0 + 2 + 30)}
        assert await app.runtime.backend.claim({"Quiet": 10}, {"Quiet": 5.0}) == []
        clock[0] = t0 + 33
        await app.drain()
        assert await app.state.list("heads") == {"1": ["c"], "2": ["x"]}

        t1 = t0 + 100
        for t in range(0, 101, 20):  # pushes every 20 s never leave 30 s of quiet
            clock[0] = t1 + t
            await app.emit("push", {"pr": 3, "head": f"h{t}"})
        # Due max_wait after the burst's first push, not 30 s after its last.
        assert [(q["data"]["head"], q["due"]) for q in await scheduled(app)] == [("h100", t1 + 120)]
        clock[0] = t1 + 121
        await app.drain()
        assert await app.state.get("heads", "3") == ["h100"]

        await app.emit("push", {"pr": 1, "head": "d"})  # a new burst runs again
        clock[0] = t1 + 152
        await app.drain()
        assert await app.state.get("heads", "1") == ["c", "d"]


LIMITED = {
    "limited_step.py": """
        config = {"type": "event", "name": "Limited", "subscribes": ["call"], "emits": [],
                  "rate_limit": {"per_second": 5}}

        async def handler(data, ctx):
            await ctx.state.increment("calls", "n")
    """,
}


def _two_processes(make_app, steps, clock):
    """Two runtimes on one store (database or Redis prefix), as two processes would be."""
    first = make_app(steps, clock=lambda: clock[0])
    second = make_app(
        steps,
        clock=lambda: clock[0],
        db=first.settings.db,
        redis_prefix=first.settings.redis_prefix,
    )
    return first, second


async def test_a_rate_limit_holds_across_two_processes(make_app):
    t0 = START.timestamp()
    clock = [t0]
    first, second = _two_processes(make_app, LIMITED, clock)
    async with first, second:
        messages = [first.runtime.message("call", {"i": i}) for i in range(12)]
        await first.runtime.backend.write(Batch(messages=messages))

        async def calls_and_left(n: int, left: int) -> bool:
            for app in (first, second):
                app.runtime.engine.wake(None)
            runs = await first.state.get("calls", "n")
            return runs == n and await first.runtime.backend.pending("Limited") == left

        for second_no, (runs, left) in enumerate([(5, 7), (10, 2), (12, 0)]):
            clock[0] = t0 + 1.001 * second_no
            await until(f"{runs} calls", lambda r=runs, lf=left: calls_and_left(r, lf))
            # The window is spent: neither process may start another run within it.
            for app in (first, second):
                assert await app.runtime.backend.claim({"Limited": 10}, {"Limited": 5.0}) == []
        assert await first.state.get("calls", "n") == 12


LATER_PLEASE = {
    "provider_step.py": """
        config = {"type": "event", "name": "Provider", "subscribes": ["ask"], "emits": [],
                  "retries": 1}

        async def handler(data, ctx):
            if await ctx.state.increment("asks", "n") == 1:
                ctx.retry_after(30, "429 Too Many Requests, Retry-After: 30")
            await ctx.state.set("asks", "attempt", ctx.attempt)
    """,
}


async def test_retry_after_reschedules_without_using_an_attempt(make_app):
    t0 = START.timestamp()
    clock = [t0]
    async with make_app(LATER_PLEASE, clock=lambda: clock[0]) as app:
        await app.emit("ask", {})
        await until("the first run", lambda: app.state.get("asks", "n"))
        [waiting] = await until("the retry to be scheduled", lambda: scheduled(app))
        assert waiting["due"] == t0 + 30
        # The log says when by the same clock as the due time (not the wall clock).
        await app.runtime.writer.flush()
        said = [e.message for e in await app.logs() if "run again" in e.message]
        assert said == ["attempt 1 asked to run again in 30.0 s"]
        clock[0] = t0 + 31
        await app.drain()
        # retries=1 allows one attempt: the "later" did not spend it.
        assert await app.state.get("asks", "attempt") == 1
        assert await app.dead_letters() == []


PER_KEY = {
    "per_key_step.py": """
        config = {"type": "event", "name": "PerKey", "subscribes": ["call"], "emits": [],
                  "concurrency": 16, "rate_limit": {"per_second": 2, "key": "account"}}

        async def handler(data, ctx):
            await ctx.state.increment("calls", data["account"])
    """,
}


async def test_a_per_key_rate_limit_holds_per_key_across_two_processes(make_app):
    t0 = START.timestamp()
    clock = [t0]
    first, second = _two_processes(make_app, PER_KEY, clock)
    async with first, second:
        # The busy account's deliveries come first: they must not hold up the others.
        accounts = ["busy"] * 7 + ["a", "b", "c"]
        messages = [first.runtime.message("call", {"account": a}) for a in accounts]
        await first.runtime.backend.write(Batch(messages=messages))

        async def calls(expected: dict[str, int]) -> bool:
            for app in (first, second):
                app.runtime.engine.wake(None)
            return await first.state.list("calls") == expected

        for second_no, busy in enumerate([2, 4, 6, 7]):
            clock[0] = t0 + 1.001 * second_no
            expected = {"busy": busy, "a": 1, "b": 1, "c": 1}
            await until(f"{busy} calls of the busy account", lambda e=expected: calls(e))

            async def settled(left: int = 7 - busy) -> bool:
                # A run's state write shows before its acknowledgement commits.
                return await first.runtime.backend.pending("PerKey") == left

            await until(f"{7 - busy} deliveries left of the busy account", settled)
            # The busy account's window is spent: neither process may start another of it.
            for app in (first, second):
                assert await app.runtime.backend.claim({"PerKey": 10}, {"PerKey": 5.0}) == []
        # Another account still has its own room in the same window.
        await first.emit("call", {"account": "d"})
        await until("the new account's call", lambda: first.state.get("calls", "d"))


def test_a_rate_limit_key_must_be_a_path_or_a_function() -> None:
    from app.step_config import EventConfig

    config = EventConfig(name="A", subscribes=["t"], rate_limit={"per_minute": 5, "key": "a/b"})
    assert config.rate_limit is not None and config.rate_limit.key == "a/b"
    with pytest.raises(ValueError, match="not a key path"):
        EventConfig(name="A", subscribes=["t"], rate_limit={"per_minute": 5, "key": "a//b"})


HELD = {
    "held_step.py": """
        import asyncio

        config = {"type": "event", "name": "Held", "subscribes": ["job"], "emits": [],
                  "key": "k", "concurrency_per_key": 1, "retries": 1}

        async def handler(data, ctx):
            if await ctx.state.increment("running", "k") > 1:
                await ctx.state.increment("overlaps", "k")
            if data.get("fail") and not await ctx.state.get("gate", "fixed"):
                await ctx.state.increment("running", "k", -1)
                raise RuntimeError("broken until fixed")
            while data.get("hold") and not await ctx.state.get("gate", "open"):
                await asyncio.sleep(0.01)
            await ctx.state.update("order", "k", lambda v: [*(v or []), data["i"]])
            await ctx.state.increment("running", "k", -1)
    """,
}


async def test_a_replayed_dead_letter_waits_for_its_key(make_app):
    async with make_app(HELD) as app:
        await app.emit("job", {"k": 1, "i": 0, "fail": True})
        [dead] = await until("the dead letter", app.dead_letters)
        await app.emit("job", {"k": 1, "i": 1, "hold": True})
        await until("the held run", lambda: app.state.get("running", "k"))
        await app.state.set("gate", "fixed", True)
        assert await app.runtime.backend.replay([dead.id]) == 1
        # Its key is busy: the replayed delivery may not start beside the held one.
        assert await app.runtime.backend.claim({"Held": 10}, {"Held": 5.0}) == []
        await app.state.set("gate", "open", True)
        await app.drain()
        assert await app.state.get("order", "k") == [1, 0]
        assert await app.state.get("overlaps", "k") is None


async def test_steps_show_flow_control_and_scheduled_deliveries(make_app, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app as cli

    async with make_app({**FLOW, **PER_KEY}) as app:
        await app.emit("kick", {"n": 1, "delay": 3600})
        await until("the delayed emit", lambda: scheduled(app))
        detail = (await app.get("/workbench/api/steps/PerKey")).json()
        assert (
            detail["flow_control"]
            == "16 at a time per process; at most 2 per second per key account"
        )
        later = (await app.get("/workbench/api/steps/Later")).json()
        assert later["queue"]["scheduled"] == 1 and later["flow_control"] == ""

        s = app.settings
        for name, value in {
            "STEPLINE_STEPS": str(s.steps[0]),
            "STEPLINE_BACKEND": s.backend,
            "STEPLINE_DB": str(s.db),
            "STEPLINE_REDIS_PREFIX": s.redis_prefix,
        }.items():
            monkeypatch.setenv(name, value)
        listed = await asyncio.to_thread(CliRunner().invoke, cli, ["steps", "--json"])
        assert listed.exit_code == 0, listed.output
        nodes = {n["id"]: n for n in json.loads(listed.stdout)["nodes"]}
        assert (
            nodes["PerKey"]["flow_control"]
            == "16 at a time per process; at most 2 per second per key account"
        )
        assert (nodes["Later"]["scheduled"], nodes["PerKey"]["scheduled"]) == (1, 0)
        table = await asyncio.to_thread(CliRunner().invoke, cli, ["steps"])
        assert (
            "PerKey: 16 at a time per process; at most 2 per second per key account; scheduled: 0"
            in table.stdout
        )
        assert "Later: no flow control; scheduled: 1" in table.stdout
