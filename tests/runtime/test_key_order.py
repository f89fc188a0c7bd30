"""Ordering keys, on every backend: with `key` and `concurrency_per_key: 1`, deliveries of one
key run one at a time and in emit order across several worker processes (real `stepline worker`
processes on one SQLite file or one Redis), while other keys go on; a failing delivery holds
its key until its retry succeeds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

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


async def test_one_key_runs_in_emit_order_one_at_a_time_across_processes(
    tmp_path: Path, backend_name: str
) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "ordered_step.py").write_text(textwrap.dedent(ORDERED_STEP))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "STEPLINE_BACKEND": backend_name,
        "STEPLINE_DB": str(tmp_path / "s.db"),
        "STEPLINE_REDIS_PREFIX": prefix,
        "STEPLINE_STEPS": str(steps),
        "STEPLINE_RETRY_BASE": "0.05",
        "STEPLINE_RETRY_MAX": "0.1",
        "STEPLINE_POLL_INTERVAL": "0.05",
    }
    settings = Settings(
        backend=backend_name, db=tmp_path / "s.db", redis_prefix=prefix, steps=[steps]
    )
    runtime = Runtime(settings)
    await runtime.open()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # Emitted before the workers start, in one commit: the order is the list's.
        messages = [
            runtime.message("work", {"pr": {"id": i % KEYS}, "i": i, "fail_once": i < KEYS})
            for i in range(DELIVERIES)
        ]
        await runtime.backend.write(Batch(messages=messages))
        for n in range(WORKERS):
            with (tmp_path / f"worker{n}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app", "worker"],
                        cwd=tmp_path,
                        env=env,
                        stdout=out,
                        stderr=out,
                    )
                )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while await runtime.backend.pending():
            exited = [p.returncode for p in procs if p.poll() is not None]
            assert not exited, (tmp_path / "worker0.log").read_text(errors="replace")[-2000:]
            assert loop.time() < deadline, await runtime.backend.queue_stats()
            await asyncio.sleep(0.1)
        order = await runtime.state.list("order")
        assert await runtime.state.list("overlaps") == {}
        assert order == {str(k): list(range(k, DELIVERIES, KEYS)) for k in range(KEYS)}
        assert await runtime.backend.dead_letters() == []
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        if backend_name == "redis":
            await runtime.backend.purge()  # type: ignore[attr-defined]
        await runtime.stop()


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
