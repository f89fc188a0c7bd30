"""Latency of an API step that verifies an HMAC signature and durably emits, under steady load.

    .venv/bin/python bench/api_latency.py [--rate 200] [--seconds 10]

Starts a real `stepline start` process (uvicorn, SQLite) and sends POSTs at a steady rate from
this process; prints p50/p99/max latency and the peak rate with 32 concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.server import SteplineProcess

SECRET = b"bench-secret"
STEPS = {
    "hook_step.py": """
        import hashlib, hmac

        config = {"type": "api", "name": "Hook", "path": "/hook", "method": "POST",
                  "emits": ["hook.received"]}

        async def handler(req, ctx):
            sent = req.headers.get("x-signature", "")
            good = "sha256=" + hmac.new(b"bench-secret", req.raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(sent, good):
                return {"status": 401, "body": {"error": "bad signature"}}
            await ctx.emit("hook.received", req.body, key=req.headers.get("x-delivery"))
            return {"status": 202, "body": {"ok": True}}
    """,
    "sink_step.py": """
        config = {"type": "event", "name": "Sink", "subscribes": ["hook.received"]}

        async def handler(data, ctx):
            pass
    """,
}


def signed(i: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"action": "opened", "number": i}).encode()
    sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return body, {"x-signature": sig, "x-delivery": f"d-{i}", "content-type": "application/json"}


async def steady(url: str, rate: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
        async def one(i: int) -> None:
            body, headers = signed(i)
            t0 = time.perf_counter()
            r = await client.post(f"{url}/hook", content=body, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202, r.text

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


async def peak(url: str, seconds: float, clients: int = 32) -> float:
    count = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients)) as client:
        async def worker(w: int) -> None:
            nonlocal count
            i = w * 1_000_000
            while time.perf_counter() < stop:
                body, headers = signed(10_000_000 + i)
                await client.post(f"{url}/hook", content=body, headers=headers)
                i += 1
                count += 1

        await asyncio.gather(*(worker(w) for w in range(clients)))
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stepline-bench-"))
    steps = tmp / "steps"
    steps.mkdir()
    for name, src in STEPS.items():
        (steps / name).write_text(textwrap.dedent(src))
    with SteplineProcess(steps, tmp / "bench.db", env={"STEPLINE_LOG_LEVEL": "WARNING"}) as app:
        latencies = sorted(asyncio.run(steady(app.url, args.rate, args.seconds)))
        q = statistics.quantiles(latencies, n=100)
        print(f"API step (HMAC verify + durable emit) at {args.rate} req/s for "
              f"{args.seconds:g} s: p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, "
              f"max {latencies[-1]:.2f} ms")
        print(f"peak with 32 clients: {asyncio.run(peak(app.url, 5)):,.0f} req/s")


if __name__ == "__main__":
    main()
