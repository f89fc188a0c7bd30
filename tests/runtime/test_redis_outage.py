"""When Redis goes away: clear errors, no secrets in them, and a clean resume when it is back.

These tests run their own redis-server on a free port (the shared one must keep running), with
an append-only file in a temporary directory so that a restart keeps what was acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from app.backends.redis import RedisBackend
from app.errors import BackendUnavailable
from app.settings import Settings
from app.types import Batch, Message, Outcome
from tests.runtime.redis_support import RedisServer, msg
from tests.support import free_port

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]


Server = RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


async def test_redis_down_raises_backend_unavailable_and_work_resumes(server: Server):
    backend = RedisBackend(Settings(REDIS_URL=server.url, redis_prefix="outage"))
    await backend.open()
    try:
        await backend.write(Batch(messages=[msg(1), msg(2), msg(3)]))
        d1, d2, d3 = await backend.claim({"A": 10}, {"A": 30})
        await backend.write(Batch(outcomes=[Outcome(d1, "ok")]))

        server.stop()
        assert await backend.ping() is False
        with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{server.port}.*REDIS_URL"):
            await backend.claim({"A": 10}, {"A": 30})
        with pytest.raises(BackendUnavailable):
            await backend.write(Batch(outcomes=[Outcome(d2, "ok")]))
        with pytest.raises(BackendUnavailable):
            await backend.state_set("g", "k", 1, None)

        server.start()
        assert await backend.ping() is True
        await backend.write(Batch(outcomes=[Outcome(d2, "ok")]))
        # Both acknowledged ones stay done (the AOF kept them); the third is still unsettled.
        assert await backend.pending() == 1
        await backend.release([d3])
        [again] = await backend.claim({"A": 10}, {"A": 30})
        assert again.data == {"i": 3}
    finally:
        await backend.close()


async def test_open_fails_clearly_without_leaking_the_password():
    port = free_port()  # nothing listens there
    url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    backend = RedisBackend(Settings(REDIS_URL=url, redis_prefix="x"))
    with pytest.raises(BackendUnavailable) as info:
        await backend.open()
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "hunter2" not in text
    assert "***" in text


async def test_consumer_group_is_recreated_after_redis_lost_everything(server: Server):
    backend = RedisBackend(Settings(REDIS_URL=server.url, redis_prefix="wiped"))
    await backend.open()
    try:
        await backend.write(Batch(messages=[msg(1)]))
        assert len(await backend.claim({"A": 10}, {"A": 30})) == 1
        await backend._r.flushall()  # as a restart of a Redis without persistence would
        await backend.write(Batch(messages=[msg(2)]))
        [d] = await asyncio.wait_for(backend.claim({"A": 10}, {"A": 30}), 5)
        assert d.data == {"i": 2}
    finally:
        await backend.close()


STEP = """
config = {"type": "event", "name": "Count", "subscribes": ["work"]}

async def handler(data, ctx):
    await ctx.state.increment("seen", str(data["i"]))
"""


def work(i: int) -> Message:
    return Message("work", {"i": i}, f"trace-{i}", ("Count",))


async def test_a_worker_rides_out_a_redis_restart(server: Server, tmp_path: Path):
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "count_step.py").write_text(STEP)
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "STEPLINE_BACKEND": "redis",
        "REDIS_URL": server.url,
        "STEPLINE_REDIS_PREFIX": "restart",
        "STEPLINE_STEPS": str(steps),
        "STEPLINE_POLL_INTERVAL": "0.05",
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    backend = RedisBackend(Settings(REDIS_URL=server.url, redis_prefix="restart"))

    async def until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
        deadline = time.monotonic() + 30
        while not await check():
            assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-2000:]}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-2000:]}")
            await asyncio.sleep(0.05)

    async def settled() -> bool:
        try:
            return await backend.pending() == 0
        except BackendUnavailable:
            return False

    async def complained() -> bool:
        return "unreachable" in log.read_text(errors="replace")

    try:
        await backend.open()
        await backend.write(Batch(messages=[work(i) for i in range(100)]))
        await until("the first 100 events", settled)

        server.stop()
        await until("the worker to report Redis as unreachable", complained)
        server.start()
        await backend.write(Batch(messages=[work(i) for i in range(100, 200)]))
        await until("the events sent after the restart", settled)
        seen = await backend.state_list("seen")
        # Nothing lost, and nothing finished before the outage ran again.
        assert sorted(int(k) for k in seen) == list(range(200))
        assert set(seen.values()) == {1}
    finally:
        worker.kill()
        worker.wait(timeout=10)
        await backend.close()
