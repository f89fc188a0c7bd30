"""Flow control across real `stepline worker` processes, on one SQLite file or one Redis: with
`key` and `concurrency_per_key: 1`, deliveries of one key run one at a time and in emit order
while other keys go on, and a failing delivery holds its key until its retry succeeds; a
delayed emit survives the SIGKILL of the worker that emitted it; a rate limit, step-wide per
second or per key per minute, holds for all the processes together."""

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
from typing import Any

import pytest

from app.runtime import Runtime
from app.settings import Settings
from app.types import Batch

ORDERED_STEP = """
    import asyncio
    import random

    config = {"type": "event", "name": "Ordered", "subscribes": ["work"], "key": "pr/id",
              "concurrency_per_key": 1, "concurrency": 16, "retries": 5}

    async def handler(data, ctx):
        k = str(data["pr"]["id"])
        if await ctx.state.increment("running", k) > 1:
            await ctx.state.increment("overlaps", k)
        await asyncio.sleep(random.random() / 200)
        if data.get("fail_once") and ctx.attempt == 1:
            await ctx.state.increment("running", k, -1)
            raise RuntimeError("fails once; the key must wait for the retry")
        await ctx.state.update("order", k, lambda v: [*(v or []), data["i"]])
        await ctx.state.increment("running", k, -1)
"""

WORKERS, DELIVERIES, KEYS = 3, 1000, 20

LATER_STEPS = {
    "kick_step.py": """
        config = {"type": "event", "name": "Kick", "subscribes": ["kick"], "emits": ["later"]}

        async def handler(data, ctx):
            await ctx.emit("later", data, delay=data["delay"])
    """,
    "later_step.py": """
        config = {"type": "event", "name": "Later", "subscribes": ["later"], "emits": []}

        async def handler(data, ctx):
            await ctx.state.set("later", "ran", data["n"])
    """,
}


class Project:
    """Step files, the settings worker processes get, and this test's own runtime (to emit
    and read state as an operator's script would; it runs no handlers)."""

    def __init__(self, tmp: Path, backend: str, files: dict[str, str]) -> None:
        self.tmp = tmp
        steps = tmp / "steps"
        steps.mkdir()
        for name, text in files.items():
            (steps / name).write_text(textwrap.dedent(text))
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "STEPLINE_BACKEND": backend,
            "STEPLINE_DB": str(tmp / "s.db"),
            "STEPLINE_REDIS_PREFIX": prefix,
            "STEPLINE_STEPS": str(steps),
            "STEPLINE_RETRY_BASE": "0.05",
            "STEPLINE_RETRY_MAX": "0.1",
            "STEPLINE_POLL_INTERVAL": "0.05",
        }
        settings = Settings(backend=backend, db=tmp / "s.db", redis_prefix=prefix, steps=[steps])
        self.runtime = Runtime(settings)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_worker(self) -> subprocess.Popen[bytes]:
        with (self.tmp / f"worker{len(self.procs)}.log").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker"],
                cwd=self.tmp,
                env=self.env,
                stdout=out,
                stderr=out,
            )
        self.procs.append(proc)
        return proc

    async def until(self, what: str, check: Callable[[], Awaitable[bool]]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not await check():
            exited = [n for n, p in enumerate(self.procs) if p.poll() not in (None, -9)]
            if exited:
                log = (self.tmp / f"worker{exited[0]}.log").read_text(errors="replace")
                raise AssertionError(f"a worker exited while waiting for {what}:\n{log[-2000:]}")
            assert loop.time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)

    async def settled(self) -> bool:
        return not await self.runtime.backend.pending()

    async def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        if self.runtime.settings.backend == "redis":
            await self.runtime.backend.purge()  # type: ignore[attr-defined]
        await self.runtime.stop()


@pytest.fixture
async def project(tmp_path: Path, backend_name: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[Project] = []

    async def make(files: dict[str, str]) -> Project:
        made.append(Project(tmp_path, backend_name, files))
        await made[-1].runtime.open()
        return made[-1]

    yield make
    for p in made:
        await p.close()


async def test_one_key_runs_in_emit_order_one_at_a_time_across_processes(project) -> None:
    p = await project({"ordered_step.py": ORDERED_STEP})
    runtime = p.runtime
    # Emitted before the workers start, in one commit: the order is the list's.
    messages = [
        runtime.message("work", {"pr": {"id": i % KEYS}, "i": i, "fail_once": i < KEYS})
        for i in range(DELIVERIES)
    ]
    await runtime.backend.write(Batch(messages=messages))
    for _ in range(WORKERS):
        p.start_worker()
    await p.until(f"{DELIVERIES} deliveries", p.settled)
    assert await runtime.state.list("overlaps") == {}
    assert await runtime.state.list("order") == {
        str(k): list(range(k, DELIVERIES, KEYS)) for k in range(KEYS)
    }
    assert await runtime.backend.dead_letters() == []


async def test_a_delayed_emit_survives_its_worker_being_sigkilled(project) -> None:
    p = await project(LATER_STEPS)
    await p.runtime.emit("kick", {"n": 5, "delay": 3})
    first = p.start_worker()

    async def emitted() -> bool:  # Kick ran; its delayed emit is stored, not yet due
        stats = await p.runtime.backend.queue_stats()
        return stats.get("Later", {}).get("scheduled") == 1 and "Kick" not in {
            s for s, row in stats.items() if row["queued"] or row["in_flight"]
        }

    await p.until("the delayed emit to be stored", emitted)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert await p.runtime.state.get("later", "ran") is None
    p.start_worker()
    await p.until("the delayed delivery", p.settled)
    assert await p.runtime.state.get("later", "ran") == 5


def test_concurrency_per_key_needs_a_key() -> None:
    from app.step_config import EventConfig

    with pytest.raises(ValueError, match="concurrency_per_key needs `key`"):
        EventConfig(name="A", subscribes=["t"], concurrency_per_key=1)
    with pytest.raises(ValueError, match="not a key path"):
        EventConfig(name="A", subscribes=["t"], key="repo//number")


FUNCTION_KEY = {
    "by_repo_step.py": """
        import asyncio

        config = {"type": "event", "name": "ByRepo", "subscribes": ["push"], "emits": [],
                  "key": lambda d: d["repo"].lower(), "concurrency_per_key": 1,
                  "concurrency": 8}

        async def handler(data, ctx):
            await asyncio.sleep(0.002 * (data["i"] % 3))
            await ctx.state.update("order", data["repo"].lower(), lambda v: [*(v or []), data["i"]])
    """,
    "path_key_step.py": """
        config = {"type": "event", "name": "PathKey", "subscribes": ["pr"], "emits": [],
                  "key": "pr/id", "concurrency_per_key": 1}

        async def handler(data, ctx):
            pass
    """,
}


async def test_a_function_key_orders_and_a_missing_key_is_refused_at_emit(make_app):
    async with make_app(FUNCTION_KEY) as app:
        repos = ["acme/API", "acme/api", "acme/web"]
        messages = [app.runtime.message("push", {"repo": repos[i % 3], "i": i}) for i in range(30)]
        await app.runtime.backend.write(Batch(messages=messages))
        app.runtime.engine.wake(None)
        await app.drain()
        assert await app.state.list("order") == {
            "acme/api": [i for i in range(30) if i % 3 != 2],
            "acme/web": list(range(2, 30, 3)),
        }
        with pytest.raises(ValueError, match="the data has nothing at 'pr/id'"):
            await app.emit("pr", {"pr": {"number": 3}})


PER_KEY_STEP = """
    import time

    config = {"type": "event", "name": "PerKey", "subscribes": ["call"], "emits": [],
              "concurrency": 8, "rate_limit": {"per_minute": 2, "key": "account"}}

    async def handler(data, ctx):
        await ctx.state.update("starts", data["account"], lambda v: [*(v or []), time.time()])
"""


async def test_a_per_key_rate_limit_is_never_exceeded_across_processes(project) -> None:
    p = await project({"per_key_step.py": PER_KEY_STEP})
    runtime = p.runtime
    # 40 deliveries of one busy account ahead of two each of 10 others, in one commit.
    accounts = ["busy"] * 40 + [f"acct{n}" for n in range(10) for _ in range(2)]
    await runtime.backend.write(
        Batch(messages=[runtime.message("call", {"account": a}) for a in accounts])
    )
    for _ in range(WORKERS):
        p.start_worker()

    async def runs(n: int) -> bool:
        return sum(len(v) for v in (await runtime.state.list("starts")).values()) >= n

    await p.until("2 runs of each of 11 accounts", lambda: runs(22))
    # The workers go on claiming for other accounts while the busy one's minute is spent.
    await runtime.emit("call", {"account": "late"})
    await p.until("the late account's run", lambda: runtime.state.get("starts", "late"))
    starts = await runtime.state.list("starts")
    assert {a: len(v) for a, v in starts.items() if a != "busy"} == {
        **{f"acct{n}": 2 for n in range(10)},
        "late": 1,
    }
    # Never a third start of one account within a minute (less what a loaded machine may put
    # between a claim and its handler's first line); normally the busy account has just 2.
    for account, times in starts.items():
        times.sort()
        assert all(b - a > 50 for a, b in zip(times, times[2:], strict=False)), account
    assert len(starts["busy"]) < 40


RATE, CALLS = 4, 32
RATED_STEP = f"""
    import asyncio
    import os
    import time

    # One at a time per process, each run 0.35 s: one process alone makes under 3 a second,
    # under the limit, so the processes must share the calls (with 16 at a time one of them
    # could take every window's calls and leave the others none), and three limited each on
    # its own would start over 8 a second.
    config = {{"type": "event", "name": "Rated", "subscribes": ["call"], "emits": [],
              "concurrency": 1, "rate_limit": {{"per_second": {RATE}}}}}

    async def handler(data, ctx):
        await ctx.state.set("starts", str(data["i"]), [time.time(), os.getpid()])
        await asyncio.sleep(0.35)
"""


async def test_a_per_second_rate_limit_is_never_exceeded_across_processes(project) -> None:
    p = await project({"rated_step.py": RATED_STEP})
    for _ in range(WORKERS):
        p.start_worker()

    async def ready() -> bool:  # all three polling before the work arrives, to share it
        logs = [(p.tmp / f"worker{n}.log").read_text(errors="replace") for n in range(WORKERS)]
        return all("worker running" in text for text in logs)

    await p.until("the workers to start", ready)
    runtime = p.runtime
    await runtime.backend.write(
        Batch(messages=[runtime.message("call", {"i": i}) for i in range(CALLS)])
    )
    await p.until(f"{CALLS} calls", p.settled)
    starts = await runtime.state.list("starts")
    assert len(starts) == CALLS
    times = sorted(at for at, _ in starts.values())
    # Never RATE + 1 starts within a second (less what a loaded machine may put between a
    # claim, which the limit counts, and its handler's first line): one process each window
    # would make 3 * RATE.
    for first, last in zip(times, times[RATE:], strict=False):
        assert last - first > 0.7, [round(t - times[0], 3) for t in times]
    assert len({pid for _, pid in starts.values()}) > 1  # the limit held across processes
