"""Chains per second through a 3-step chain (A -> B -> C), 10,000 chains, SQLite backend.

    .venv/bin/python bench/chain.py [--chains 10000] [--backend sqlite|redis]

Every handler run is a real delivery: claimed with a lease, run, acknowledged in the same commit
as its emits, with a span recorded. The figure is chains completed per second from the first
enqueue to the last completion; every id is checked to arrive exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from app.runtime import Runtime
from app.settings import Settings
from app.types import Batch

# A and B pass the event on; bench/redis_chain.py reuses them with its own end step.
HOPS = {
    "a_step.py": """
        config = {"type": "event", "name": "A", "subscribes": ["chain.a"], "emits": ["chain.b"]}

        async def handler(data, ctx):
            await ctx.emit("chain.b", data)
    """,
    "b_step.py": """
        config = {"type": "event", "name": "B", "subscribes": ["chain.b"], "emits": ["chain.c"]}

        async def handler(data, ctx):
            await ctx.emit("chain.c", data)
    """,
}

STEPS = {
    **HOPS,
    "c_step.py": """
        import bench_sink

        config = {"type": "event", "name": "C", "subscribes": ["chain.c"]}

        async def handler(data, ctx):
            bench_sink.record(data["i"])
    """,
}


class Sink:
    def __init__(self, want: int) -> None:
        self.seen: list[int] = []
        self.want = want
        self.done = asyncio.Event()

    def record(self, i: int) -> None:
        self.seen.append(i)
        if len(self.seen) >= self.want:
            self.done.set()


async def run(chains: int, backend: str) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="stepline-bench-"))
    for name, src in STEPS.items():
        (tmp / name).write_text(textwrap.dedent(src))
    sink = Sink(chains)
    sys.modules["bench_sink"] = sink  # type: ignore[assignment]
    settings = Settings(steps=[tmp], db=tmp / "bench.db", backend=backend,
                        redis_prefix=f"bench-{uuid.uuid4().hex[:8]}", poll_interval=0.05)
    runtime = Runtime(settings)
    await runtime.open()
    messages = [runtime.message("chain.a", {"i": i}) for i in range(chains)]
    await runtime.start()
    started = time.perf_counter()
    for i in range(0, chains, 1000):
        await runtime.writer.submit(Batch(messages=messages[i:i + 1000]))
    await asyncio.wait_for(sink.done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await runtime.stop()
    assert sorted(sink.seen) == list(range(chains)), "an id was lost or handled twice"
    return chains / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=10_000)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "redis"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = sorted(asyncio.run(run(args.chains, args.backend)) for _ in range(args.runs))
    print(f"{args.backend}: 3-step chain, {args.chains} chains, median of {args.runs}: "
          f"{figures[len(figures) // 2]:,.0f} chains/s "
          f"({3 * figures[len(figures) // 2]:,.0f} handler runs/s); runs: "
          + ", ".join(f"{f:,.0f}" for f in figures))


if __name__ == "__main__":
    main()
