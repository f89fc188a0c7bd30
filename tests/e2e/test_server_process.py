"""A real `stepline start` process driven over HTTP, killed and restarted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import SteplineProcess
from tests.runtime.redis_support import new_prefix, redis_up
from tests.support import write_steps

STEPS = {
    "bulk_step.py": """
        config = {"type": "api", "name": "Bulk", "path": "/bulk", "method": "POST",
                  "emits": ["work"]}

        async def handler(req, ctx):
            for i in range(req.body["count"]):
                await ctx.emit("work", {"i": i})
            return {"status": 202, "body": {"queued": req.body["count"]}}
    """,
    "done_step.py": """
        config = {"type": "api", "name": "Done", "path": "/done", "method": "GET"}

        async def handler(req, ctx):
            return {"done": len(await ctx.state.list("done"))}
    """,
    "record_step.py": """
        import asyncio

        config = {"type": "event", "name": "Record", "subscribes": ["work"], "concurrency": 8}

        async def handler(data, ctx):
            await asyncio.sleep(0.01)
            await ctx.state.set("done", str(data["i"]), True)
    """,
}


def wait_done(url: str, want: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = httpx.get(f"{url}/done", timeout=5).json()["done"]
        if done >= want:
            return done
        time.sleep(0.1)
    raise TimeoutError(f"only {done} of {want} events handled after {timeout} s")


@pytest.fixture(params=["sqlite", "redis"])
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment selecting the backend of a stepline process; Redis keys are removed after."""
    if request.param == "sqlite":
        yield {}
        return
    import redis

    if not redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = new_prefix()
    yield {"STEPLINE_BACKEND": "redis", "STEPLINE_REDIS_PREFIX": prefix}
    client = redis.Redis()
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_sigkill_mid_run_loses_no_event(tmp_path, backend_env):
    steps = write_steps(tmp_path / "steps", STEPS)
    db = tmp_path / "stepline.db"
    first = SteplineProcess(steps, db, env=backend_env).start()
    try:
        response = httpx.post(f"{first.url}/bulk", json={"count": 1000}, timeout=10)
        assert response.status_code == 202
        done = wait_done(first.url, 100, timeout=30)
        assert done < 1000, "the run finished before the kill; make handlers slower"
    finally:
        first.kill()
    env = {**backend_env, "STEPLINE_WORKBENCH_TOKEN": "t0ken-for-tests"}
    with SteplineProcess(steps, db, env=env) as second:
        assert wait_done(second.url, 1000, timeout=60) == 1000
        events = httpx.get(
            f"{second.url}/_stepline/events",
            timeout=5,
            headers={"authorization": "Bearer t0ken-for-tests"},
        ).json()
        assert events["dead"] == []


def test_bad_input_gets_4xx_never_500(tmp_path):
    steps = write_steps(tmp_path / "steps", STEPS)
    env = {"STEPLINE_BODY_LIMIT": "1000"}
    with SteplineProcess(steps, tmp_path / "s.db", env=env) as app:
        big = httpx.post(
            f"{app.url}/bulk", content=b"x" * 5000, headers={"content-type": "application/json"}
        )
        assert big.status_code == 413 and "STEPLINE_BODY_LIMIT" in big.json()["error"]
        bad = httpx.post(
            f"{app.url}/bulk", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        assert httpx.get(f"{app.url}/nowhere").status_code == 404
        assert "/bulk" in httpx.get(f"{app.url}/openapi.json").json()["paths"]
        assert httpx.get(f"{app.url}/healthz").json() == {"status": "ok"}
        # `start` without STEPLINE_WORKBENCH_TOKEN keeps the admin API closed.
        assert httpx.get(f"{app.url}/_stepline/steps").status_code == 403


def test_sigterm_stops_cleanly(tmp_path):
    steps = write_steps(tmp_path / "steps", STEPS)
    app = SteplineProcess(steps, tmp_path / "s.db").start()
    # uvicorn re-raises SIGTERM after a clean shutdown, so -15 is a clean exit too.
    assert app.stop() in (0, -15)
    assert "Application shutdown complete" in app.log.read_text()


def test_log_level_warning_quiets_the_request_and_startup_lines(tmp_path):
    # uvicorn was started at "info" whatever STEPLINE_LOG_LEVEL said: its startup lines and
    # one access line per request still came at WARNING.
    steps = write_steps(tmp_path / "steps", STEPS)
    env = {"STEPLINE_LOG_LEVEL": "WARNING"}
    with SteplineProcess(steps, tmp_path / "s.db", env=env) as app:
        for _ in range(3):
            assert httpx.get(f"{app.url}/healthz").status_code == 200
        time.sleep(0.3)
        out = app.output()
    assert "GET /healthz" not in out and "Uvicorn running on" not in out, out
    with SteplineProcess(steps, tmp_path / "t.db") as app:  # the default, INFO, keeps them
        assert httpx.get(f"{app.url}/healthz").status_code == 200
        time.sleep(0.3)
        out = app.output()
    assert "GET /healthz" in out and "Uvicorn running on" in out, out


STREAM_STEPS = {
    "news_step.py": """
        config = {"type": "api", "name": "News", "path": "/news", "method": "POST"}

        async def handler(req, ctx):
            await ctx.stream("news", {"headline": req.body["headline"]})
            return {"status": 202}
    """,
}


def test_stream_reaches_sse_clients_filtered_by_trace(tmp_path):
    steps = write_steps(tmp_path / "steps", STREAM_STEPS)
    with (
        SteplineProcess(steps, tmp_path / "s.db", command="dev") as app,
        httpx.stream(
            "GET", f"{app.url}/streams/news", params={"trace_id": "mine"}, timeout=10
        ) as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        httpx.post(f"{app.url}/news", json={"headline": "other"}, headers={"x-trace-id": "x"})
        httpx.post(f"{app.url}/news", json={"headline": "ours"}, headers={"x-trace-id": "mine"})
        received = [line for line in (next(lines) for _ in range(4)) if line]
        assert received[0] == "event: news"
        data = json.loads(received[1].removeprefix("data: "))
        assert data["data"] == {"headline": "ours"} and data["trace_id"] == "mine"


def test_start_with_workers_handles_every_event(tmp_path, backend_env):
    steps = write_steps(tmp_path / "steps", STEPS)
    app = SteplineProcess(steps, tmp_path / "shared.db", env=backend_env, workers=2)
    with app:
        response = httpx.post(f"{app.url}/bulk", json={"count": 300}, timeout=10)
        assert response.status_code == 202
        assert wait_done(app.url, 300, timeout=60) == 300
        assert app.output().count("worker running") == 2


SLOW_STEPS = {
    **STEPS,
    "record_step.py": """
        import asyncio, os

        config = {"type": "event", "name": "Record", "subscribes": ["work"], "concurrency": 8}

        async def handler(data, ctx):
            await ctx.state.set("started", str(data["i"]), True)
            await asyncio.sleep(1.0)
            await ctx.state.set("done", str(data["i"]), os.getpid())
    """,
}


def test_sigterm_lets_running_handlers_finish(tmp_path):
    steps = write_steps(tmp_path / "steps", SLOW_STEPS)
    db = tmp_path / "s.db"
    first = SteplineProcess(steps, db, env={"STEPLINE_SHUTDOWN_GRACE": "10"}).start()
    httpx.post(f"{first.url}/bulk", json={"count": 4}, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (tmp_path / "s.db").exists():
        time.sleep(0.05)
    time.sleep(0.5)  # the four handlers are in their one-second sleep now
    first.stop()
    with SteplineProcess(steps, db) as second:
        assert wait_done(second.url, 4, timeout=30) == 4
    import sqlite3

    rows = sqlite3.connect(db).execute("SELECT value FROM state WHERE grp = 'done'").fetchall()
    assert {int(r[0]) for r in rows} == {first.process.pid}, "handlers were cut off and re-run"


def test_start_restarts_a_worker_that_dies(tmp_path):
    import os
    import signal
    import subprocess

    steps = write_steps(tmp_path / "steps", STEPS)
    with SteplineProcess(steps, tmp_path / "s.db", workers=1) as app:
        assert app.process is not None

        def workers() -> list[int]:
            out = subprocess.run(
                ["pgrep", "-P", str(app.process.pid)], capture_output=True, text=True
            ).stdout
            return [int(p) for p in out.split()]

        deadline = time.monotonic() + 20
        while not workers() and time.monotonic() < deadline:
            time.sleep(0.1)
        (victim,) = workers()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while workers() in ([], [victim]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert workers() and victim not in workers()
        httpx.post(f"{app.url}/bulk", json={"count": 20}, timeout=10)
        assert wait_done(app.url, 20, timeout=30) == 20
        assert "starting another" in app.output()
