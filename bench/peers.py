"""Stepline beside huey, dramatiq and Celery on the same 3-step chain, interleaved in one run
(A, B, A, B...), medians of the rounds and the ratios of each pair measured in the same round.

    .venv/bin/python bench/peers.py              # 5,000 chains (Celery 1,000), 3 rounds, ~3 min
    .venv/bin/python bench/peers.py --quick      # smoke: 500 chains (Celery 200), 1 round

The peers live in their own venv, ~/.cache/stepline-bench/peers (outside the repo, never the
project's venv); it is created with pinned versions on first use, from PyPI. What each peer runs
is described in bench/peer_apps.py. Stepline runs the same chain in one process on SQLite
(bench/chain.py) and on two `stepline worker` processes on Redis (bench/redis_chain.py).

The peers' producers make one enqueue call per chain, so each Stepline system is measured with
two producers: `batched` (1,000 messages per commit) and `sequential` (one awaited
`runtime.emit` per chain, the like-for-like line). Celery runs fewer chains (it is ~20x slower)
so that a round stays under a minute; every figure is a steady rate after a warm-up chain.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _util import Rounds, bench_parser, log_once, parse, scratch
from chain import batched, sequential, stepline_chain
from redis_chain import stepline_redis_chain

__all__ = ["PEERS_VENV", "ensure_peers"]

HERE = Path(__file__).resolve().parent
PEERS_VENV = Path.home() / ".cache" / "stepline-bench" / "peers"
PINS = ["huey==2.6.0", "dramatiq[redis]==2.2.1", "celery[redis]==5.7.0", "redis==8.1.0"]


def ensure_peers() -> Path:
    """The peers' interpreter, installing them into their own venv when it is missing."""
    python = PEERS_VENV / "bin" / "python"
    check = [str(python), "-c", "import huey, dramatiq, celery, redis"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing {', '.join(PINS)} into {PEERS_VENV} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS])
    if done.returncode != 0:
        raise SystemExit(
            f"could not install the peers into {PEERS_VENV}: pip exited with "
            f"{done.returncode}; remove that directory and run again"
        )
    return python


def peer(python: Path, system: str, chains: int, tmp: Path) -> float:
    with scratch(system, tmp) as run_dir:
        script = str(HERE / "peer_apps.py")
        args = [str(python), script, system, "--chains", str(chains), "--dir", str(run_dir)]
        done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{system} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="500 chains (Celery 200), 1 round")
    parser.add_argument("--chains", type=int, default=5000)
    parser.add_argument("--celery-chains", type=int, default=1000)
    args = parse(parser, chains=500, celery_chains=200)
    log_once("stepline.redis")
    python = ensure_peers()
    n = args.chains
    with scratch("peers") as tmp:
        plan: dict[str, Callable[[], float]] = {
            "Stepline SQLite, batched": lambda: asyncio.run(stepline_chain(n, batched, tmp)),
            "Stepline SQLite, sequential": lambda: asyncio.run(stepline_chain(n, sequential, tmp)),
            "huey SqliteHuey, 2 processes": lambda: peer(python, "huey", n, tmp),
            "Stepline Redis 2 workers, batched": lambda: stepline_redis_chain(n, 2, tmp),
            "Stepline Redis 2 workers, sequential": lambda: stepline_redis_chain(
                n, 2, tmp, sequential
            ),
            "dramatiq Redis, 2 processes x 16 threads": lambda: peer(python, "dramatiq", n, tmp),
            "Celery Redis, prefork 2": lambda: peer(python, "celery", args.celery_chains, tmp),
        }
        rounds = Rounds(args.rounds).run(plan)
    labels = list(plan)
    print(
        rounds.table(labels[0], title=f"3-step chain, {n:,} chains (Celery {args.celery_chains:,})")
    )
    print("Stepline / peer, median of the per-round ratios:")
    for ours, theirs in [(0, 2), (1, 2), (3, 5), (4, 5), (3, 6), (4, 6)]:
        print(
            f"  {labels[ours]} / {labels[theirs]}: "
            f"{rounds.ratio(labels[ours], labels[theirs]):.2f}x"
        )


if __name__ == "__main__":
    main()
