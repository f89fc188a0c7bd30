"""The 3-step chain on huey, dramatiq and Celery, run in the peers' own venv (never the
project's): bench/peers.py calls it once per measurement and reads one JSON line back.

    ~/.cache/stepline-bench/peers/bin/python bench/peer_apps.py huey --chains 5000

Each system gets the same shape as Stepline's chain: task A receives i and enqueues B, B enqueues
C, C records completion through bench/_sink.py. Workers start first and run one warm-up chain;
then the clock starts, the producer makes one enqueue call per chain (the system's own API, from
this one process), and the figure runs to the last completion, every id checked to arrive once.

- huey 2.6 SqliteHuey, 2 worker processes, WAL with `synchronous=NORMAL` (huey's default is OFF;
  Stepline runs NORMAL), polling every 10 ms at most 100 ms apart, results off.
- dramatiq, Redis broker, 2 processes x 16 threads, default middleware (retries included).
- Celery 5, Redis broker, prefork pool of 2, results off, default (early) acknowledgement.
Workers are imported from this module by each system's own command line; BENCH_PEER says which
system the import builds, so only that library is imported.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _sink import WARMUP, collect, record, sink_env

__all__ = ["SYSTEMS", "run"]

SYSTEMS = ("huey", "dramatiq", "celery")
SYSTEM = os.environ.get("BENCH_PEER", "")
PREFIX = os.environ.get("BENCH_PREFIX", "bench-peer")
URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

enqueue: Any = None  # the chain's first task, set below for the system being built

if SYSTEM == "huey":
    from huey import Huey
    from huey.storage import SqliteStorage

    class NormalSyncStorage(SqliteStorage):  # type: ignore[misc]
        def _create_connection(self) -> Any:
            conn = super()._create_connection()
            conn.execute("pragma synchronous=1")  # NORMAL, as Stepline's SQLite runs
            return conn

    huey = Huey(
        "bench",
        results=False,
        storage_class=NormalSyncStorage,
        filename=os.environ.get("BENCH_HUEY_DB", "huey.db"),
    )

    @huey.task()
    def huey_c(i: int) -> None:
        record(i)

    @huey.task()
    def huey_b(i: int) -> None:
        huey_c(i)

    @huey.task()
    def huey_a(i: int) -> None:
        huey_b(i)

    enqueue = huey_a

elif SYSTEM == "dramatiq":
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    dramatiq.set_broker(RedisBroker(url=URL, namespace=PREFIX))

    @dramatiq.actor
    def dramatiq_c(i: int) -> None:
        record(i)

    @dramatiq.actor
    def dramatiq_b(i: int) -> None:
        dramatiq_c.send(i)

    @dramatiq.actor
    def dramatiq_a(i: int) -> None:
        dramatiq_b.send(i)

    enqueue = dramatiq_a.send

elif SYSTEM == "celery":
    from celery import Celery

    app = Celery("bench", broker=URL)
    app.conf.update(
        task_default_queue=PREFIX,
        task_ignore_result=True,
        broker_transport_options={"global_keyprefix": f"{PREFIX}:"},
        worker_hijack_root_logger=False,
    )

    @app.task
    def celery_c(i: int) -> None:
        record(i)

    @app.task
    def celery_b(i: int) -> None:
        celery_c.delay(i)

    @app.task
    def celery_a(i: int) -> None:
        celery_b.delay(i)

    enqueue = celery_a.delay


def worker_command(system: str, prefix: str) -> list[str]:
    if system == "huey":
        return [
            str(BIN / "huey_consumer"),
            "peer_apps.huey",
            "-k",
            "process",
            "-w",
            "2",
            "-d",
            "0.01",
            "-m",
            "0.1",
            "-n",
        ]
    if system == "dramatiq":
        return [str(BIN / "dramatiq"), "peer_apps", "-p", "2", "-t", "16"]
    return [
        str(BIN / "celery"),
        "-A",
        "peer_apps",
        "worker",
        "-c",
        "2",
        "-P",
        "prefork",
        "-Q",
        prefix,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "warning",
    ]


def run(system: str, chains: int, tmp: Path) -> float:
    """Chains per second of `system`; its workers are stopped before this returns."""
    from _util import purge_prefix, spawn, stop

    prefix = f"bench-{system}-{uuid.uuid4().hex[:8]}"
    (tmp / "sink").mkdir(parents=True)
    env = {
        "BENCH_PEER": system,
        "BENCH_PREFIX": prefix,
        "BENCH_HUEY_DB": str(tmp / "huey.db"),
        "PYTHONPATH": str(HERE),
        **sink_env(tmp / "sink"),
    }
    os.environ.update(env)
    module = importlib.import_module("peer_apps")  # built for `system` now that env says so
    procs = [spawn(worker_command(system, prefix), log=tmp / "worker.log", env=env, cwd=HERE)]
    alive = lambda: procs[0].poll() is None  # noqa: E731
    try:
        module.enqueue(WARMUP)
        collect(tmp / "sink", 1, ids=range(WARMUP, 0), timeout=60, alive=alive)
        started = time.monotonic()
        for i in range(chains):
            module.enqueue(i)
        last = collect(tmp / "sink", chains, timeout=600, alive=alive)
        return chains / (last - started)
    except BaseException:
        print((tmp / "worker.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop(*procs, timeout=10)
        if system != "huey":
            purge_prefix(prefix, URL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("--chains", type=int, default=5000)
    parser.add_argument(
        "--dir", type=Path, required=True, help="scratch directory (emptied by the caller)"
    )
    args = parser.parse_args()
    rate = run(args.system, args.chains, args.dir)
    print(json.dumps({"system": args.system, "chains": args.chains, "rate": rate}))


if __name__ == "__main__":
    main()
