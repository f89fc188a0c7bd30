"""Chains per second through a 3-step chain (A -> B -> C) in one Stepline process, beside the raw
SQLite ceiling, with each way of producing labelled.

    .venv/bin/python bench/chain.py                 # 10,000 chains, 3 interleaved rounds
    .venv/bin/python bench/chain.py --quick         # smoke: 2,000 chains, 1 round (< 1 min)
    .venv/bin/python bench/chain.py --long 100000   # rate per decile, database size, RSS

Producers (each its own line, never compared as if alike):
- batched: 1,000 messages per writer commit, submitted one batch after another;
- concurrent: one `runtime.emit` per chain from N concurrent producer tasks (default 64);
- sequential: one `runtime.emit` per chain, each awaited before the next.

Every handler run is a real delivery: claimed with a lease, run, acknowledged in the commit that
stores its emits and its span. The figure is chains completed per second from the first enqueue
to the last completion; every id is checked to arrive exactly once. A second table gives the
CPU time per chain over the same interval (this process, all its threads), which a shared
machine's load moves far less than the rate. Temporary directories are
removed at the end, also on an error or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from _util import (
    Rounds,
    bench_parser,
    file_mib,
    load_note,
    parse,
    rss_mib,
    scratch,
    write_steps,
)
from raw_sqlite import raw_sqlite_chain

from app.runtime import Runtime
from app.settings import Settings
from app.types import Batch

__all__ = ["HOPS", "stepline_chain"]

PAGE_PRAGMAS = ("page_count", "freelist_count")

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
        import bench_inprocess_sink

        config = {"type": "event", "name": "C", "subscribes": ["chain.c"]}

        async def handler(data, ctx):
            bench_inprocess_sink.record(data["i"])
    """,
}

Producer = Callable[[Runtime, int], Awaitable[None]]


class Sink:
    """Completions of the in-process chain, with their times (for the per-decile rates)."""

    def __init__(self, want: int) -> None:
        self.seen: list[int] = []
        self.times: list[float] = []
        self.want = want
        self.done = asyncio.Event()

    def record(self, i: int) -> None:
        self.seen.append(i)
        self.times.append(time.perf_counter())
        if len(self.seen) >= self.want:
            self.done.set()


async def batched(runtime: Runtime, chains: int) -> None:
    for start in range(0, chains, 1000):
        end = min(chains, start + 1000)
        await runtime.writer.submit(
            Batch(messages=[runtime.message("chain.a", {"i": i}) for i in range(start, end)])
        )


def concurrent(producers: int) -> Producer:
    async def produce(runtime: Runtime, chains: int) -> None:
        async def one_producer(first: int) -> None:
            for i in range(first, chains, producers):
                await runtime.emit("chain.a", {"i": i})

        await asyncio.gather(*(one_producer(p) for p in range(min(producers, chains))))

    return produce


async def sequential(runtime: Runtime, chains: int) -> None:
    for i in range(chains):
        await runtime.emit("chain.a", {"i": i})


async def stepline_chain(
    chains: int,
    produce: Producer,
    tmp: Path,
    *,
    backend: str = "sqlite",
    report: bool = False,
    steps: dict[str, str] | None = None,
    cpu: list[float] | None = None,
) -> float:
    """One run in a fresh database (or Redis prefix); chains per second. `steps` replaces
    the chain's step files (same names and topics, other configs); the CPU microseconds per
    chain go to `cpu`."""
    with scratch("run", tmp) as run_dir:
        write_steps(run_dir / "steps", {**STEPS, **(steps or {})})
        sink = Sink(chains)
        sys.modules["bench_inprocess_sink"] = sink  # type: ignore[assignment]
        prefix = f"bench-chain-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            steps=[run_dir / "steps"],
            db=run_dir / "bench.db",
            backend=backend,
            redis_prefix=prefix,
            poll_interval=0.05,
        )
        runtime = Runtime(settings)
        await runtime.open()
        try:
            await runtime.start()
            started, cpu_started = time.perf_counter(), time.process_time()
            peak = asyncio.create_task(peak_mib(settings.db)) if report else None
            await produce(runtime, chains)
            await asyncio.wait_for(sink.done.wait(), timeout=900)
            elapsed = time.perf_counter() - started
            if cpu is not None:
                cpu.append((time.process_time() - cpu_started) / chains * 1e6)
            if report:
                await runtime.writer.flush()
                assert peak is not None
                peak.cancel()
                print_long_report(sink, started, settings.db, await peak)
        finally:
            if backend == "redis":
                from _util import purge_prefix

                purge_prefix(prefix, settings.redis_url)
            await runtime.stop()
        if sorted(sink.seen) != list(range(chains)):
            raise SystemExit("Stepline chain: an id was lost or handled twice")
        return chains / elapsed


async def peak_mib(db: Path) -> float:
    """The largest the file and its WAL were, looked at every 0.2 s until cancelled: three
    stat calls a look, nothing beside the run's own work."""
    most = 0.0
    try:
        while True:
            if db.exists():
                most = max(most, file_mib(db))
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        return most


def print_long_report(sink: Sink, started: float, db: Path, peak: float) -> None:
    n = len(sink.times)
    marks = [started] + [sink.times[(n * d) // 10 - 1] for d in range(1, 11)]
    rates = [(n / 10) / (b - a) for a, b in itertools.pairwise(marks)]
    print("  rate per decile of completions (chains/s): " + ", ".join(f"{r:,.0f}" for r in rates))
    print(f"  last decile / first decile: {rates[-1] / rates[0]:.2f}x")
    wal = db.with_name(db.name + "-wal")
    wal_mib = wal.stat().st_size / 2**20 if wal.exists() else 0.0
    print(
        f"  database at the end: {file_mib(db):.1f} MiB = {file_mib(db) * 1.048576:.1f} MB "
        f"(file {db.stat().st_size / 2**20:.1f} MiB, WAL {wal_mib:.1f} MiB); "
        f"RSS of this process: {rss_mib():.0f} MiB"
    )
    print(
        f"  largest during the run (looked at every 0.2 s): {peak:.1f} MiB "
        f"= {peak * 1.048576:.1f} MB"
    )
    with sqlite3.connect(db) as conn:  # whatever tables the schema has now: it may change
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        # A span row holds a commit's spans (app/backends/sqlite_spans.py): count those too.
        spans = (
            conn.execute("SELECT sum(n) FROM span_rows").fetchone()
            if "span_rows" in tables
            else None
        )
        pages, free = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in PAGE_PRAGMAS)
    print(f"  file pages: {pages:,}, of them free: {free:,}")
    print("  rows: " + ", ".join(f"{t} {c:,}" for t, c in counts.items() if c))
    if spans and spans[0]:
        print(f"  spans stored: {spans[0]:,} (readers see the newest STEPLINE_TRACE_RETENTION)")


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="2,000 chains, 1 round; --long at most 20,000")
    parser.add_argument("--chains", type=int, default=10_000)
    parser.add_argument(
        "--producers", type=int, default=64, help="concurrent producers of the 'concurrent' line"
    )
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "redis"])
    parser.add_argument(
        "--long",
        type=int,
        metavar="CHAINS",
        help="one long run after a run a tenth as long: rate per decile, size, RSS",
    )
    args = parse(parser, chains=2000, long=20_000)
    with scratch("chain") as tmp:
        if args.long:
            run_long(args.long, args.backend, tmp, args.rounds)
            return
        cpu: dict[str, list[float]] = {}

        def line(label: str, produce: Producer) -> tuple[str, Callable[[], float]]:
            costs = cpu.setdefault(label, [])
            return label, lambda: asyncio.run(
                stepline_chain(args.chains, produce, tmp, backend=args.backend, cpu=costs)
            )

        plan: dict[str, Callable[[], float]] = dict(
            [
                line(f"Stepline {args.backend}, batched (1,000 per commit)", batched),
                line(
                    f"Stepline {args.backend}, 1 emit/chain, {args.producers} producers",
                    concurrent(args.producers),
                ),
                line(f"Stepline {args.backend}, 1 emit/chain, sequential", sequential),
            ]
        )
        base = "raw SQLite ceiling"
        if args.backend == "sqlite":
            raw_costs = cpu.setdefault(base, [])
            plan = {base: lambda: raw_sqlite_chain(args.chains, tmp, raw_costs), **plan}
            cpu = {base: raw_costs, **cpu}
        else:
            base = next(iter(plan))
        rounds = Rounds(args.rounds).run(plan)
        print(rounds.table(base, title=f"3-step chain, {args.chains:,} chains"))
        costs = Rounds(args.rounds, unit="us CPU/chain")
        costs.figures = cpu
        print(costs.table(base, title="CPU time per chain (this process), same runs"))


def run_long(chains: int, backend: str, tmp: Path, rounds: int) -> None:
    """The long run's rate beside a run a tenth as long (10,000 for 100,000), same producer,
    in `rounds` interleaved pairs: the ratio of each pair, then their median. The CPU per chain
    of each pair is printed beside, as a shared machine's load moves it far less."""
    short_n = chains // 10
    print(
        f"{backend}: {short_n:,} chains, then {chains:,} chains, batched producer, "
        f"{rounds} round(s)"
    )
    ratios, cpu_ratios = [], []
    for n in range(1, rounds + 1):
        short_cpu: list[float] = []
        long_cpu: list[float] = []
        short = asyncio.run(stepline_chain(short_n, batched, tmp, backend=backend, cpu=short_cpu))
        print(f"round {n}: {short_n:,} chains: {short:,.0f} chains/s ({load_note()})")
        long = asyncio.run(
            stepline_chain(chains, batched, tmp, backend=backend, report=True, cpu=long_cpu)
        )
        ratios.append(long / short)
        cpu_ratios.append(long_cpu[0] / short_cpu[0])
        print(
            f"round {n}: {chains:,} chains: {long:,.0f} chains/s = {ratios[-1]:.2f}x the "
            f"{short_n:,}-chain rate; CPU per chain {long_cpu[0]:.0f} us / {short_cpu[0]:.0f} us "
            f"= {cpu_ratios[-1]:.2f}x"
        )
    print(
        f"{chains:,} chains / {short_n:,} chains, median of {rounds}: rate "
        f"{statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)}); "
        f"CPU per chain {statistics.median(cpu_ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
