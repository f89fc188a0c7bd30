"""Delayed emits from outside a step: `stepline emit --delay` and `POST /_stepline/emit` with
`delay` or `at` store the event now and deliver it at its time (the clock is injected)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "later_step.py": """
        config = {"type": "event", "name": "Later", "subscribes": ["later"]}

        async def handler(data, ctx):
            await ctx.state.set("done", "later", data)
    """,
}
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def scheduled(h: Harness) -> list[tuple[object, float]]:
    r = await h.get("/_stepline/events")
    assert r.status_code == 200
    queued = r.json()["queued"]
    return [(q["data"], q["due"] - q["created_at"]) for q in queued if q["status"] == "scheduled"]


def test_cli_emit_with_a_delay_waits_for_its_time(tmp_path, monkeypatch):
    steps = write_steps(tmp_path / "steps", STEPS)
    monkeypatch.setenv("STEPLINE_STEPS", str(steps))
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "cli.db"))
    result = CliRunner().invoke(cli, ["emit", "later", '{"n": 1}', "--delay", "3600"])
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, ["emit", "later", "{}", "--delay", "-5"])
    assert bad.exit_code == 1 and "seconds >= 0" in bad.output and "Traceback" not in bad.output

    async def check() -> None:
        async with Harness([steps], db=tmp_path / "cli.db") as h:
            assert await scheduled(h) == [({"n": 1}, pytest.approx(3600))]
            assert await h.state.get("done", "later") is None
        # An hour on, the same database delivers it.
        later = Harness([steps], db=tmp_path / "cli.db", clock=lambda: time.time() + 3601)
        async with later as h:
            await h.drain()
            assert await h.state.get("done", "later") == {"n": 1}

    asyncio.run(check())


async def test_http_emit_takes_delay_or_at(tmp_path):
    now = [START.timestamp()]
    steps = write_steps(tmp_path / "steps", STEPS)
    async with Harness([steps], db=tmp_path / "t.db", clock=lambda: now[0]) as h:
        r = await h.post("/_stepline/emit", json={"topic": "later", "data": {"n": 1}, "delay": 60})
        assert r.status_code == 202
        at = (START + timedelta(minutes=10)).isoformat()
        r = await h.post("/_stepline/emit", json={"topic": "later", "data": {"n": 2}, "at": at})
        assert r.status_code == 202
        assert sorted(await scheduled(h), key=str) == [({"n": 1}, 60.0), ({"n": 2}, 600.0)]

        naive = {"topic": "later", "at": "2026-03-02T09:10:00"}
        r = await h.post("/_stepline/emit", json=naive)
        assert r.status_code == 422 and "timezone" in r.text and "at" in r.text
        r = await h.post("/_stepline/emit", json={"topic": "later", "delay": 5, "at": at})
        assert r.status_code == 400 and "not both" in r.text
        r = await h.post("/_stepline/emit", json={"topic": "later", "delay": -1})
        assert r.status_code == 422 and "delay" in r.text
        # A finite delay can still be past any time a datetime or the Workbench can show.
        for huge in (1e308, 3e11):
            r = await h.post("/_stepline/emit", json={"topic": "later", "delay": huge})
            assert r.status_code == 400 and "year 9999" in r.text, (huge, r.text)
        # A zone west of UTC puts a datetime of the last hour of 9999 past that moment.
        last = {"topic": "later", "at": "9999-12-31T23:00:00-12:00"}
        r = await h.post("/_stepline/emit", json=last)
        assert r.status_code == 400 and "year 9999" in r.text, r.text
        with pytest.raises(ValueError, match="year 9999"):
            await h.emit("later", {}, delay=10**400)  # past float's range: not OverflowError

        now[0] += 61  # the first is due, the second not yet: drain() would wait for it
        for _ in range(1000):
            h.runtime.engine.wake(None)
            if await h.state.get("done", "later") is not None:
                break
            await asyncio.sleep(0.01)
        assert await h.state.get("done", "later") == {"n": 1}
        assert [data for data, _ in await scheduled(h)] == [{"n": 2}]
        now[0] += 600
        await h.drain()
        assert await h.state.get("done", "later") == {"n": 2}
