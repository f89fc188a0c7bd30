"""What metrics cost: the 3-step SQLite chain of bench/chain.py with `/metrics` counting on
(the default) against the same chain with STEPLINE_METRICS=0, interleaved in one run.

    .venv/bin/python bench/metrics_overhead.py            # 10,000 chains, 5 rounds
    .venv/bin/python bench/metrics_overhead.py --quick    # 2,000 chains, 1 round

A third line turns the event-loop watchdog off too (STEPLINE_LOOP_BLOCK_MS=0), so the cost of
each middleware shows on its own. The target: metrics on within 5 % of metrics off.

On a loaded machine the chain's rounds swing by more than 5 % on their own, so the script also
prints the CPU time per chain of each run (steadier: waiting for a core is not counted) and
times the metrics hook alone (`Metrics.after_run` on a real run, CPU time, best of 5 x 200,000
calls) and prints it as a share of the CPU per chain of the "metrics off" runs.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _util import Rounds, bench_parser, interrupt_on_sigterm, scratch
from chain import batched, stepline_chain

CONFIGS: dict[str, dict[str, str]] = {
    "metrics on": {},
    "metrics off": {"STEPLINE_METRICS": "0"},
    "metrics and watchdog off": {"STEPLINE_METRICS": "0", "STEPLINE_LOOP_BLOCK_MS": "0"},
}


def measure(chains: int, env: dict[str, str], tmp: Path, cpu: list[float]) -> Callable[[], float]:
    def run() -> float:
        saved = {k: os.environ.get(k) for k in ("STEPLINE_METRICS", "STEPLINE_LOOP_BLOCK_MS")}
        os.environ.update(env)
        try:
            return asyncio.run(stepline_chain(chains, batched, tmp, cpu=cpu))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return run


def hook_cost_us(calls: int = 200_000, repeats: int = 5) -> float:
    """CPU microseconds per `Metrics.after_run` call on a run shaped like the chain's, the best
    of `repeats` (CPU time, so time spent waiting for a core on a loaded machine is left out)."""
    from app.metrics import Metrics
    from app.middleware import Run
    from app.registry import Step
    from app.step_config import EventConfig
    from app.types import Span

    step = Step(
        config=EventConfig(name="BenchHook", subscribes=["x"]),
        handler=lambda data, ctx: None,
        file=Path("bench"),
        is_async=True,
    )
    span = Span("t", "BenchHook", "event", 0.0, duration_ms=0.3)
    run = Run(step, ctx=None, span=span)  # type: ignore[arg-type]
    metrics = Metrics()
    hook = metrics.after_run

    async def timed() -> float:  # in a running loop, as runs are: the flush is its own cost
        started = time.process_time()
        for _ in range(calls):
            hook(run, "ok")
        metrics.flush()
        return (time.process_time() - started) / calls * 1e6

    return min(asyncio.run(timed()) for _ in range(repeats))


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="2,000 chains, 1 round")
    parser.add_argument("--chains", type=int, default=10_000)
    args = parser.parse_args()
    chains, rounds = (2_000, 1) if args.quick else (args.chains, max(args.rounds, 5))
    interrupt_on_sigterm()
    with scratch("metrics", Path(tempfile.gettempdir())) as tmp:
        cpu: dict[str, list[float]] = {label: [] for label in CONFIGS}
        plan = {label: measure(chains, env, tmp, cpu[label]) for label, env in CONFIGS.items()}
        result = Rounds(rounds).run(plan)
    print(result.table("metrics off", title=f"{chains:,} chains, SQLite, batched producer"))
    costs = Rounds(rounds, unit="us CPU/chain")
    costs.figures = cpu
    print(costs.table("metrics off", title="CPU time per chain (this process), same runs"))
    ratio = result.ratio("metrics on", "metrics off")
    verdict = "within" if ratio >= 0.95 else "NOT within"
    print(f"metrics on / metrics off: {ratio:.3f} ({verdict} the 5 % target)")
    extra = costs.ratio("metrics on", "metrics off") - 1
    verdict = "within" if extra <= 0.05 else "NOT within"
    print(f"CPU per chain, metrics on vs off: {extra:+.1%} ({verdict} the 5 % target)")
    per_chain_us = costs.median("metrics off")
    cost = hook_cost_us()
    print(
        f"the metrics hook alone: {cost:.2f} us CPU per run, 3 runs a chain = "
        f"{3 * cost / per_chain_us:.1%} of the CPU per chain with metrics off "
        f"({per_chain_us:.0f} us, same process)"
    )


if __name__ == "__main__":
    main()
