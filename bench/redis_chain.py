"""Chains per second through a 3-step chain on the Redis backend, with 1, 2 and 4 workers.

    .venv/bin/python bench/redis_chain.py [--events 10000] [--workers 1 2 4]

Step A receives {i} and emits to B, B emits to C, C counts the completion. Events are injected
at once; the figure is chains completed per second from the first enqueue to the last
completion, with spans recorded for every handler run. Beside it, the same 3-hop chain done by
hand with redis-py (XREADGROUP COUNT 100, pipelined XACK + XADD, one process) gives the raw
ceiling of Redis Streams on this machine, so the ratio shows Stepline's overhead. Uses REDIS_URL
(default redis://127.0.0.1:6379/0) under a throwaway key prefix that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import redis
from chain import HOPS  # bench/ is the script's directory, first on sys.path

from app.backends.redis import RedisBackend
from app.settings import Settings
from app.types import Batch, Message

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# Workers are separate processes, so C counts completions in Redis state instead of a sink.
STEPS = {
    **HOPS,
    "c_step.py": """
        config = {"type": "event", "name": "C", "subscribes": ["chain.c"]}

        async def handler(data, ctx):
            await ctx.state.increment("bench", "done")
    """,
}


async def stepline_chain(events: int, workers: int, steps: Path) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "STEPLINE_BACKEND": "redis", "REDIS_URL": URL,
           "STEPLINE_REDIS_PREFIX": prefix, "STEPLINE_STEPS": str(steps),
           "STEPLINE_LOG_LEVEL": "INFO"}
    logs = [steps.parent / f"{prefix}-{n}.log" for n in range(workers)]
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env,
                                          stdout=out, stderr=out, cwd=steps.parent))
    backend = RedisBackend(Settings(REDIS_URL=URL, redis_prefix=prefix))
    await backend.open()
    try:
        deadline = time.monotonic() + 60
        while not all("worker running" in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("workers did not start:\n" + logs[0].read_text()[-2000:])
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        for start in range(0, events, 1000):
            await backend.write(Batch(messages=[
                Message("chain.a", {"i": i}, uuid.uuid4().hex, ("A",))
                for i in range(start, min(events, start + 1000))]))
        deadline = time.monotonic() + 600
        while (await backend.state_get("bench", "done"))[1] != events:
            if time.monotonic() > deadline:
                raise SystemExit("the chain did not finish within 10 minutes")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        # The last acknowledgements commit just after the last handler ran.
        while await backend.pending():
            if time.monotonic() > deadline:
                raise SystemExit("deliveries stayed unsettled after the last completion")
            await asyncio.sleep(0.01)
        if (await backend.state_get("bench", "done"))[1] != events:
            raise SystemExit("a chain completed more than once")
        return events / elapsed
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        await backend.purge()
        await backend.close()


def raw_chain(events: int) -> float:
    """The same chain with bare redis-py calls: the most Redis Streams give a Python client."""
    prefix = f"bench-raw-{uuid.uuid4().hex[:10]}"
    r = redis.Redis.from_url(URL)
    streams = [f"{prefix}:{s}" for s in "abc"]
    try:
        for s in streams:
            r.xgroup_create(s, "g", id="0", mkstream=True)
        started = time.perf_counter()
        pipe = r.pipeline(transaction=False)
        for i in range(events):
            pipe.xadd(streams[0], {"d": f'{{"i": {i}}}'})
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        done = 0
        while done < events:
            for hop, s in enumerate(streams):
                got = r.xreadgroup("g", "c", {s: ">"}, count=100)
                if not got:
                    continue
                entries = got[0][1]
                pipe = r.pipeline(transaction=True)
                pipe.xack(s, "g", *[e[0] for e in entries])
                pipe.xdel(s, *[e[0] for e in entries])
                if hop < 2:
                    for _, fields in entries:
                        pipe.xadd(streams[hop + 1], fields)
                else:
                    done += len(entries)
                pipe.execute()
        return events / (time.perf_counter() - started)
    finally:
        r.delete(*streams)
        r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        steps = Path(tmp) / "steps"
        steps.mkdir()
        for name, source in STEPS.items():
            (steps / name).write_text(textwrap.dedent(source))
        ceiling = raw_chain(args.events)
        print(f"3-step chain, {args.events:,} events, Redis at {URL}")
        print(f"  raw redis-py streams, 1 process : {ceiling:9,.0f} chains/s")
        for n in args.workers:
            rate = asyncio.run(stepline_chain(args.events, n, steps))
            print(f"  stepline, {n} worker{'s' if n > 1 else ' '}             : "
                  f"{rate:9,.0f} chains/s  ({rate / ceiling:.0%} of raw)")


if __name__ == "__main__":
    main()
