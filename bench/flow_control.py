"""What declared flow control costs when it does not bind: the 3-step chain of bench/chain.py
with step B keyed (`key` unique per chain, `concurrency_per_key: 1`) and then also
rate-limited far above the chain's speed, against the same chain without them, interleaved
in one run. The target (issue 16): within 10 %.

    .venv/bin/python bench/flow_control.py                    # SQLite, 5,000 chains, 5 rounds
    .venv/bin/python bench/flow_control.py --backend redis    # the same on Redis
    .venv/bin/python bench/flow_control.py --quick            # 1,000 chains, 1 round
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from _util import Rounds, bench_parser, interrupt_on_sigterm, scratch
from chain import batched, stepline_chain

_B = """
    config = {{"type": "event", "name": "B", "subscribes": ["chain.b"], "emits": ["chain.c"],
              {extra}}}

    async def handler(data, ctx):
        await ctx.emit("chain.c", data)
"""

CONFIGS: dict[str, dict[str, str]] = {
    "plain": {},
    "key, 1 per key": {"b_step.py": _B.format(extra='"key": "i", "concurrency_per_key": 1')},
    "key + rate limit": {
        "b_step.py": _B.format(
            extra='"key": "i", "concurrency_per_key": 1, "rate_limit": {"per_second": 10**9}'
        )
    },
}


def measure(chains: int, steps: dict[str, str], tmp: Path, backend: str) -> Callable[[], float]:
    return lambda: asyncio.run(stepline_chain(chains, batched, tmp, backend=backend, steps=steps))


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="1,000 chains, 1 round")
    parser.add_argument("--chains", type=int, default=5_000)
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    args = parser.parse_args()
    chains, rounds = (1_000, 1) if args.quick else (args.chains, max(args.rounds, 5))
    interrupt_on_sigterm()
    with scratch("flow", Path(tempfile.gettempdir())) as tmp:
        plan = {
            label: measure(chains, steps, tmp, args.backend) for label, steps in CONFIGS.items()
        }
        result = Rounds(rounds).run(plan)
    print(result.table("plain", title=f"{chains:,} chains, {args.backend}, batched producer"))
    for label in CONFIGS:
        if label != "plain":
            ratio = result.ratio(label, "plain")
            verdict = "within" if ratio >= 0.90 else "NOT within"
            print(f"{label} / plain: {ratio:.3f} ({verdict} the 10 % target)")


if __name__ == "__main__":
    main()
