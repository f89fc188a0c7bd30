"""Chains per second through a 3-step chain on the Redis backend, beside a raw Redis Streams
ceiling on the same number of processes, interleaved in one run.

    .venv/bin/python bench/redis_chain.py            # 10,000 chains, 3 rounds, 1 and 2 workers
    .venv/bin/python bench/redis_chain.py --quick    # smoke: 2,000 chains, 1 round (< 1 min)

Stepline: `stepline worker` processes (A emits to B, B to C, C records completion), fed from
this process in writer commits of 1,000 chains, every handler run recorded as a span.
Raw ceiling: two consumer processes of bare redis-py in one consumer group, each doing what the
storage allows and no more: one `XREADGROUP COUNT 100` over the three streams at once, then one
MULTI/EXEC pipeline holding the batch's emits (XADD) and its XACKs (no XDEL), JSON decoded and
re-encoded at each hop as a handler would.

Both end the chain through bench/_sink.py: every id must arrive exactly once, and the figure runs
from the first enqueue to the last completion. Each run uses its own key prefix under REDIS_URL
(default redis://127.0.0.1:6379/0), deleted afterwards.

Stepline runs with its default settings (STEPLINE_CONCURRENCY=64 runs in flight per process),
and once more on 2 workers with about as many in flight as the raw consumer reads at once
(`--concurrency`).

A second table gives the CPU time per chain over the same interval: of the consumer processes
(from /proc, so it holds on a loaded machine where the rates move with the load), and of the
redis-server (INFO cpu: every client of that server counts, so only a quiet server's is clean).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import cast

import redis
from _sink import WARMUP, collect, record, sink_env
from _util import (
    REDIS_URL,
    Rounds,
    bench_parser,
    log_once,
    parse,
    purge_prefix,
    scratch,
    spawn,
    stop,
    write_steps,
)
from chain import HOPS, Producer, batched

from app.runtime import Runtime
from app.settings import Settings

__all__ = ["raw_streams_chain", "stepline_redis_chain"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

Cpu = dict[str, list[float]]
"""Per run label: CPU microseconds per chain, each round's."""


class CpuMeter:
    """CPU seconds used by some processes and by the redis-server, from a start mark."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.client = redis.Redis.from_url(REDIS_URL)
        self.start = self._now()

    def _now(self) -> tuple[float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        procs = 0.0
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            procs += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        info = cast("dict[str, float]", self.client.info("cpu"))
        return procs, float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def record(self, into: Cpu | None, label: str, chains: int) -> None:
        procs, server = self._now()
        self.client.close()
        if into is not None:
            into.setdefault(f"{label}: consumer processes", []).append(
                (procs - self.start[0]) / chains * 1e6
            )
            into.setdefault(f"{label}: redis-server", []).append(
                (server - self.start[1]) / chains * 1e6
            )


# Workers are separate processes, so C records completions through the shared file sink.
STEPS = {
    **HOPS,
    "c_step.py": """
        import _sink

        config = {"type": "event", "name": "C", "subscribes": ["chain.c"]}

        async def handler(data, ctx):
            _sink.record(data["i"])
    """,
}


async def _stepline_run(
    chains: int,
    workers: int,
    tmp: Path,
    produce: Producer,
    cpu: Cpu | None,
    label: str,
    concurrency: int | None,
) -> float:
    with scratch("redis", tmp) as run_dir:
        steps = write_steps(run_dir / "steps", STEPS)
        (run_dir / "sink").mkdir()
        prefix = f"bench-redis-{uuid.uuid4().hex[:10]}"
        env = {
            "STEPLINE_BACKEND": "redis",
            "REDIS_URL": REDIS_URL,
            "STEPLINE_REDIS_PREFIX": prefix,
            "STEPLINE_STEPS": str(steps),
            "STEPLINE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": f"{HERE}:{ROOT}",
            **sink_env(run_dir / "sink"),
        }
        if concurrency is not None:
            env["STEPLINE_CONCURRENCY"] = str(concurrency)
        settings = Settings(
            steps=[steps], backend="redis", redis_url=REDIS_URL, redis_prefix=prefix
        )
        runtime = Runtime(settings)
        procs = [
            spawn(
                [sys.executable, "-m", "app", "worker"],
                log=run_dir / f"worker-{n}.log",
                env=env,
                cwd=ROOT,
            )
            for n in range(workers)
        ]
        try:
            await runtime.open()
            alive = lambda: all(p.poll() is None for p in procs)  # noqa: E731
            await runtime.emit("chain.a", {"i": WARMUP})
            await asyncio.to_thread(collect, run_dir / "sink", 1, ids=range(WARMUP, 0), alive=alive)
            meter = CpuMeter([p.pid for p in procs])
            started = time.monotonic()
            await produce(runtime, chains)
            last = await asyncio.to_thread(collect, run_dir / "sink", chains, alive=alive)
            meter.record(cpu, label, chains)
            # The last acknowledgements commit just after the last handler ran.
            deadline = time.monotonic() + 30
            while await runtime.backend.pending():
                if time.monotonic() > deadline:
                    raise SystemExit(
                        "Stepline Redis: deliveries stayed unsettled after the last one"
                    )
                await asyncio.sleep(0.01)
            return chains / (last - started)
        except BaseException:
            print((run_dir / "worker-0.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            stop(*procs)
            await runtime.stop()
            purge_prefix(prefix)


def stepline_redis_chain(
    chains: int,
    workers: int,
    tmp: Path,
    produce: Producer = batched,
    cpu: Cpu | None = None,
    label: str = "Stepline Redis",
    concurrency: int | None = None,
) -> float:
    """Chains per second on `workers` fresh `stepline worker` processes, fed by `produce`
    (with STEPLINE_CONCURRENCY when given); the CPU per chain goes to `cpu[label...]`."""
    return asyncio.run(_stepline_run(chains, workers, tmp, produce, cpu, label, concurrency))


def raw_consumer(prefix: str, name: str) -> None:
    """One raw consumer process; runs until the harness stops it."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = [f"{prefix}:{hop}" for hop in "abc"]
    following = {keys[0].encode(): keys[1], keys[1].encode(): keys[2]}
    streams = dict.fromkeys(keys, ">")
    while True:
        got = cast(
            "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
            client.xreadgroup("g", name, streams, count=100, block=100),  # type: ignore[arg-type]
        )
        if not got:
            continue
        pipe = client.pipeline(transaction=True)
        finished: list[int] = []
        for stream, entries in got:
            target = following.get(stream)
            for _, fields in entries:
                value = json.loads(fields[b"d"])
                if target is None:
                    finished.append(value["i"])
                else:
                    pipe.xadd(target, {"d": json.dumps(value)})
            pipe.xack(stream, "g", *(entry_id for entry_id, _ in entries))
        pipe.execute()
        for i in finished:  # complete once acknowledged, as Stepline's C is
            record(i)


def raw_streams_chain(
    chains: int, consumers: int, tmp: Path, cpu: Cpu | None = None, label: str = "raw"
) -> float:
    with scratch("raw", tmp) as run_dir:
        (run_dir / "sink").mkdir(parents=True)
        prefix = f"bench-raw-{uuid.uuid4().hex[:10]}"
        client = redis.Redis.from_url(REDIS_URL)
        procs = []
        try:
            for hop in "abc":
                client.xgroup_create(f"{prefix}:{hop}", "g", id="0", mkstream=True)
            procs = [
                spawn(
                    [sys.executable, __file__, "--raw-consumer", prefix, f"c{n}"],
                    log=run_dir / f"raw-{n}.log",
                    env=sink_env(run_dir / "sink"),
                )
                for n in range(consumers)
            ]
            alive = lambda: all(p.poll() is None for p in procs)  # noqa: E731
            client.xadd(f"{prefix}:a", {"d": json.dumps({"i": WARMUP})})
            collect(run_dir / "sink", 1, ids=range(WARMUP, 0), alive=alive)
            meter = CpuMeter([p.pid for p in procs])
            started = time.monotonic()
            pipe = client.pipeline(transaction=False)
            for i in range(chains):
                pipe.xadd(f"{prefix}:a", {"d": json.dumps({"i": i})})
                if i % 1000 == 999:
                    pipe.execute()
            pipe.execute()
            last = collect(run_dir / "sink", chains, alive=alive)
            meter.record(cpu, label, chains)
            return chains / (last - started)
        finally:
            stop(*procs)
            purge_prefix(prefix)
            client.close()


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="2,000 chains, 1 round")
    parser.add_argument("--chains", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--consumers", type=int, default=2, help="raw consumer processes")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="*",
        default=[256],
        help="also run 2 workers with STEPLINE_CONCURRENCY=N (default 256: as many runs in "
        "flight as the raw consumer's COUNT 100 over three streams); none to skip",
    )
    parser.add_argument(
        "--raw-consumer", nargs=2, metavar=("PREFIX", "NAME"), help=argparse.SUPPRESS
    )
    args = parse(parser, chains=2000)
    if args.raw_consumer:
        with contextlib.suppress(KeyboardInterrupt):  # SIGTERM is how the harness stops it
            raw_consumer(*args.raw_consumer)
        return
    log_once("stepline.redis")
    cpu: Cpu = {}
    with scratch("redis") as tmp:
        base = f"raw Redis Streams, {args.consumers} consumer processes"
        plan: dict[str, Callable[[], float]] = {
            base: lambda: raw_streams_chain(args.chains, args.consumers, tmp, cpu, base)
        }
        for n in args.workers:
            label = f"Stepline Redis, {n} worker process{'es' if n > 1 else ''}"
            plan[label] = lambda n=n, label=label: stepline_redis_chain(  # type: ignore[misc]
                args.chains, n, tmp, cpu=cpu, label=label
            )
        for c in args.concurrency:
            label = f"Stepline Redis, 2 worker processes, STEPLINE_CONCURRENCY={c}"
            plan[label] = lambda c=c, label=label: stepline_redis_chain(  # type: ignore[misc]
                args.chains, 2, tmp, cpu=cpu, label=label, concurrency=c
            )
        rounds = Rounds(args.rounds).run(plan)
        print(
            rounds.table(
                base, title=f"3-step chain on Redis at {REDIS_URL}, {args.chains:,} chains"
            )
        )
    for part in ("consumer processes", "redis-server"):
        costs = Rounds(args.rounds, unit="us CPU/chain")
        costs.figures = {k: v for k, v in cpu.items() if k.endswith(part)}
        print(costs.table(f"{base}: {part}", title=f"CPU time per chain of the {part}"))


if __name__ == "__main__":
    main()
