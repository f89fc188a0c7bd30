"""Many Stepline processes on one Redis: shared work, a SIGKILLed worker, atomic counters.

Workers are real `stepline worker` processes (python -m app worker); the test injects events and
reads state through its own RedisBackend, as an operator's script would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from app.backends.redis import RedisBackend
from app.settings import Settings
from app.types import Batch, Message
from tests.runtime.redis_support import REDIS_MARKS, URL, new_prefix

pytestmark = REDIS_MARKS

COUNT_STEP = """
    import asyncio
    import os

    # A time limit well above a run's length: a run cut short by a starved CPU would be run
    # again (at least once), which is not what the exactly-once count below is about.
    config = {"type": "event", "name": "Count", "subscribes": ["work"], "timeout": 5,
              "retries": 10}

    async def handler(data, ctx):
        pause = float(os.environ.get("COUNT_PAUSE", "0"))
        if pause:
            await asyncio.sleep(pause)
        await ctx.state.increment("seen", str(data["i"]))
        await ctx.state.increment("workers", str(os.getpid()))
"""


class Cluster:
    def __init__(self, tmp: Path, prefix: str) -> None:
        self.tmp = tmp
        self.prefix = prefix
        self.steps = tmp / "steps"
        self.steps.mkdir()
        (self.steps / "count_step.py").write_text(textwrap.dedent(COUNT_STEP))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.backend = RedisBackend(Settings(REDIS_URL=URL, redis_prefix=prefix))

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "STEPLINE_BACKEND": "redis",
            "REDIS_URL": URL,
            "STEPLINE_REDIS_PREFIX": self.prefix,
            "STEPLINE_STEPS": str(self.steps),
            # Leases end soon after the step's 5 s time limit, so a killed worker's
            # deliveries come back within seconds.
            "STEPLINE_LEASE_SECONDS": "1",
            "STEPLINE_LOG_LEVEL": "INFO",
            **extra,
        }

    def start_worker(self, **extra: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker"],
                cwd=self.tmp,
                env=self.env(**extra),
                stdout=out,
                stderr=out,
            )
        self.procs.append(proc)
        return proc

    def log(self, n: int) -> str:
        return (self.tmp / f"worker{n}.log").read_text(errors="replace")

    async def all_running(self) -> bool:
        return all("worker running" in self.log(n) for n in range(len(self.procs)))

    async def inject(self, n: int) -> None:
        for start in range(0, n, 500):
            await self.backend.write(
                Batch(
                    messages=[
                        Message("work", {"i": i}, uuid.uuid4().hex, ("Count",))
                        for i in range(start, min(n, start + 500))
                    ]
                )
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, new_prefix())
    await c.backend.open()
    yield c
    c.stop()
    await c.backend.purge()
    await c.backend.close()


async def until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float, cluster: Cluster
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        dead = [p for p in cluster.procs if p.poll() not in (None, -signal.SIGKILL)]
        if dead:
            err = cluster.log(cluster.procs.index(dead[0]))
            raise AssertionError(
                f"a worker exited ({dead[0].returncode}) while waiting for {what}:\n{err[-2000:]}"
            )
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_three_workers_share_5000_events_each_handled_once(cluster: Cluster):
    for _ in range(3):
        cluster.start_worker()

    await until(cluster.all_running, "three workers to start", 30, cluster)
    await cluster.inject(5000)

    async def done() -> bool:
        return await cluster.backend.pending() == 0

    await until(done, "5,000 events to be handled", 60, cluster)
    seen = await cluster.backend.state_list("seen")
    assert len(seen) == 5000 and set(seen.values()) == {1}
    workers = await cluster.backend.state_list("workers")
    assert sum(workers.values()) == 5000
    assert len(workers) == 3, f"work was not shared: {workers}"


async def test_a_sigkilled_worker_loses_no_event(cluster: Cluster):
    # Each run pauses a little so the kill lands while the victim holds leased work.
    victim = cluster.start_worker(COUNT_PAUSE="0.05")
    for _ in range(2):
        cluster.start_worker(COUNT_PAUSE="0.05")

    await until(cluster.all_running, "three workers to start", 30, cluster)
    await cluster.inject(3000)

    async def victim_busy() -> bool:
        return str(victim.pid) in await cluster.backend.state_list("workers")

    await until(victim_busy, "the victim to handle events", 30, cluster)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)

    async def done() -> bool:
        return await cluster.backend.pending() == 0

    # The victim's leased deliveries return after their lease (timeout + 5 s).
    await until(done, "every event to be handled after the kill", 60, cluster)
    seen = await cluster.backend.state_list("seen")
    assert sorted(int(k) for k in seen) == list(range(3000))
    assert await cluster.backend.dead_letters() == []


INCREMENTER = """
import asyncio, sys
from app.backends.redis import RedisBackend
from app.settings import Settings

async def main() -> None:
    b = RedisBackend(Settings(REDIS_URL=sys.argv[1], redis_prefix=sys.argv[2]))
    await b.open()
    for _ in range(100):
        await b.state_increment("counters", "hits", 1)
        await b.state_update("counters", "updates", lambda v: v + 1, 0)
    await b.close()

asyncio.run(main())
"""


async def test_twenty_processes_incrementing_one_counter_lose_nothing(cluster: Cluster):
    script = cluster.tmp / "incr.py"
    script.write_text(INCREMENTER)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(script), URL, cluster.prefix, stderr=subprocess.PIPE
        )
        for _ in range(20)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 90)
    failed = [err.decode() for p, (_, err) in zip(procs, results, strict=True) if p.returncode]
    assert not failed, failed[0][-2000:]
    assert await cluster.backend.state_get("counters", "hits") == (True, 2000)
    assert await cluster.backend.state_get("counters", "updates") == (True, 2000)
