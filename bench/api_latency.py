"""Latency of an API step that verifies an HMAC signature and durably emits, under steady load.

    .venv/bin/python bench/api_latency.py [--rate 200] [--seconds 10]

Starts a real `stepline start` process (uvicorn, SQLite) and sends POSTs at a steady rate from
this process; prints p50/p99/max latency, then the peak rate measured by wrk (32 connections),
beside the same server's GET /healthz.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import shutil
import statistics
import subprocess
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


def wrk_peak(url: str, tmp: Path) -> str:
    """Peak rate measured by wrk (a C load generator), so the client is not the limit."""
    body, headers = signed(0)
    headers.pop("x-delivery")  # without a key every request is a new durable emit
    script = tmp / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t2", "-c32", "-d5s", "-s", str(script), f"{url}/hook"],
                         capture_output=True, text=True, check=True).stdout
    rate = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    bare = subprocess.run(["wrk", "-t2", "-c32", "-d5s", f"{url}/healthz"],
                          capture_output=True, text=True, check=True).stdout
    bare_rate = next(line for line in bare.splitlines() if line.startswith("Requests/sec"))
    return (f"wrk, 32 connections: signed webhook with durable emit {rate.split()[-1]} req/s; "
            f"GET /healthz {bare_rate.split()[-1]} req/s")


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
        if shutil.which("wrk"):
            print(wrk_peak(app.url, tmp))
        else:
            print("install wrk (apt-get install wrk) for the server's own peak rate")


if __name__ == "__main__":
    main()
