"""`key_on_failure: "release"`: a delivery waiting for its retry frees its ordering key, so the
next deliveries of the key run; once due it takes a turn behind its key's queue (never beside
a running one of its key), its attempts still counted. Run against every backend, on the
runtime's injected clock (retries wait for it). The default, "hold", is test_flow_processes'
`fail_once` and test_flow_control's replayed dead letter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from typer.testing import CliRunner

from app.registry import load_registry
from app.types import Batch
from tests.support import until, write_steps

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
FAST = {"retry_base": 0.05, "retry_max": 0.1}
"""Retries due within a second of the clock, well inside a lease (which the clock also ends)."""

RELEASING = {
    "released_step.py": """
        import asyncio

        config = {"type": "event", "name": "Released", "subscribes": ["job"], "emits": [],
                  "key": "k", "concurrency_per_key": 1, "retries": 3,
                  "key_on_failure": "release"}

        async def handler(data, ctx):
            if await ctx.state.increment("running", "k") > 1:
                await ctx.state.increment("overlaps", "k")
            try:
                if data.get("fail") == "always" or (data.get("fail") and ctx.attempt == 1):
                    raise RuntimeError("broken")
                while data.get("hold") and not await ctx.state.get("gate", "open"):
                    await asyncio.sleep(0.01)
                ran = [data["i"], ctx.attempt]
                await ctx.state.update("order", "k", lambda v: [*(v or []), ran])
            finally:
                await ctx.state.increment("running", "k", -1)
    """,
}


async def _runs(app) -> int:
    await app.runtime.writer.flush()
    return len(await app.spans(step="Released"))


async def test_a_failing_delivery_releases_its_key_and_runs_later_behind_it(make_app):
    clock = [START]
    async with make_app(RELEASING, clock=lambda: clock[0], **FAST) as app:
        jobs = [{"k": "a", "i": 0, "fail": True}, {"k": "a", "i": 1}, {"k": "a", "i": 2, "hold": 1}]
        await app.runtime.backend.write(
            Batch(messages=[app.runtime.message("job", j) for j in jobs])
        )
        app.runtime.engine.wake(None)
        # The clock stands still, so 0's retry is not due: 1 and 2 went on without it.
        await until("1 to run and 2 to start", lambda: _order_is(app, [[1, 1]], running=1))
        clock[0] += 1
        # Due now, it queues behind its key: not beside 2, which still runs.
        assert await app.runtime.backend.claim({"Released": 10}, {"Released": 5.0}) == []
        await app.state.set("gate", "open", True)
        app.runtime.engine.wake(None)
        await app.drain()
        assert await app.state.get("order", "k") == [[1, 1], [2, 1], [0, 2]]
        assert await app.state.get("overlaps", "k") is None
        assert await app.dead_letters() == []


async def _order_is(app, order: list[list[int]], running: int) -> bool:
    return (
        await app.state.get("order", "k") == order
        and await app.state.get("running", "k") == running
    )


async def test_a_released_delivery_still_uses_up_its_attempts(make_app):
    clock = [START]
    async with make_app(RELEASING, clock=lambda: clock[0], **FAST) as app:
        await app.emit("job", {"k": "a", "i": 0, "fail": "always"})
        for n in (1, 2):
            await until(f"attempt {n}", lambda n=n: _at_least(_runs(app), 2 * n - 1))
            await app.emit("job", {"k": "a", "i": n})  # runs while 0 waits for its retry
            await until(f"{n} to run", lambda n=n: _at_least(_runs(app), 2 * n))
            clock[0] += 1
            app.runtime.engine.wake(None)
        await app.drain()
        (dead,) = await app.dead_letters()
        assert dead.attempts == 3 and "broken" in dead.error
        assert await app.state.get("order", "k") == [[1, 1], [2, 1]]


async def _at_least(count, n: int) -> bool:
    return await count >= n


def test_key_on_failure_is_checked_with_the_file_and_the_fix(tmp_path) -> None:
    head = 'config = {"type": "event", "name": "%s", "subscribes": ["a"], '
    write_steps(
        tmp_path,
        {
            "skip_step.py": head % "S" + '"key": "k", "concurrency_per_key": 1, '
            '"key_on_failure": "skip"}\nasync def handler(d, ctx): pass\n',
            "unkeyed_step.py": head % "U" + '"key_on_failure": "release"}\n'
            "async def handler(d, ctx): pass\n",
        },
    )
    errors = {e.file.rsplit("/", 1)[1]: e for e in load_registry([tmp_path]).errors}
    assert errors["skip_step.py"].field == "key_on_failure"
    assert "'skip' is not a choice: use 'hold'" in str(errors["skip_step.py"])
    assert "or 'release'" in str(errors["skip_step.py"])
    assert "key_on_failure needs an ordering key to release: add `key` and" in str(
        errors["unkeyed_step.py"]
    )


async def test_steps_show_that_a_step_releases_its_key(make_app, monkeypatch):
    from app.cli import app as cli

    async with make_app(RELEASING) as app:
        shown = "key k: 1 at a time, released while a failed one waits to retry"
        detail = (await app.get("/workbench/api/steps/Released")).json()
        assert detail["flow_control"] == shown
        s = app.settings
        monkeypatch.setenv("STEPLINE_STEPS", str(s.steps[0]))
        monkeypatch.setenv("STEPLINE_BACKEND", s.backend)
        monkeypatch.setenv("STEPLINE_DB", str(s.db))
        monkeypatch.setenv("STEPLINE_REDIS_PREFIX", s.redis_prefix)
        table = await asyncio.to_thread(CliRunner().invoke, cli, ["steps"])
        assert table.exit_code == 0, table.output
        assert f"Released: {shown}" in table.stdout
