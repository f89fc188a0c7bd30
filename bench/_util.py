"""What every bench script shares, written once: scratch directories that never outlive a run
(also on an error, Ctrl-C or SIGTERM), interleaved rounds with medians and ratios, worker
processes stopped by their process group, Redis key clean-up, RSS and file sizes.

The machine is shared and noisy, so no figure is printed alone: `Rounds` runs the systems in
turn (A, B, A, B), and a ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

__all__ = [
    "REDIS_URL",
    "ROOT",
    "Rounds",
    "bench_parser",
    "file_mib",
    "free_port",
    "interrupt_on_sigterm",
    "load_note",
    "log_once",
    "parse",
    "purge_prefix",
    "rss_mib",
    "scratch",
    "spawn",
    "stop",
    "write_steps",
]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the scripts run as `python bench/x.py`; tests/ has helpers
    sys.path.insert(1, str(ROOT))

from tests.support import free_port, write_steps  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def bench_parser(doc: str, *, quick: str) -> argparse.ArgumentParser:
    """The options every bench shares: --rounds, and --quick (a smoke run under a minute)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def parse(parser: argparse.ArgumentParser, **quick: int) -> argparse.Namespace:
    """Parse the command line. --quick runs 1 round and caps each size named in `quick`; from
    here on SIGTERM cleans up as Ctrl-C does."""
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
        for name, cap in quick.items():
            if getattr(args, name) is not None:
                setattr(args, name, min(getattr(args, name), cap))
    interrupt_on_sigterm()
    return args


def log_once(logger: str) -> None:
    """Let each distinct message of `logger` through once (a warning per run is noise)."""
    seen: set[str] = set()

    def first_time(record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in seen:
            return False
        seen.add(text)
        return True

    logging.getLogger(logger).addFilter(first_time)


def interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally` blocks (clean-up) run for it too."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


@contextlib.contextmanager
def scratch(tag: str, parent: Path | None = None) -> Iterator[Path]:
    """A temporary directory removed when the block ends, however it ends. Each measurement
    takes one under the script's own, so runs do not pile up their databases until the end."""
    path = Path(tempfile.mkdtemp(prefix=f"stepline-bench-{tag}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def spawn(
    args: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A worker in its own process group, so `stop` also ends the children it forks."""
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(*procs: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM each process group, then SIGKILL what is left after `timeout`."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group's forked children too
        proc.wait(timeout=10)


def uvicorn_argv(app: list[str], port: int, *extra: str) -> list[str]:
    """A one-process uvicorn on loopback without an access log, as every bench server runs."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        *app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *extra,
    ]


def await_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    """Wait up to 30 s for `/healthz` on `port`; stop `proc` and exit with its log if it
    dies or never answers."""
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise SystemExit(f"{what} did not start:\n" + log.read_text()) from None
            time.sleep(0.1)


def purge_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete this run's keys from the shared Redis (never anything outside `prefix`)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


def rss_mib(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def file_mib(path: Path) -> float:
    """A SQLite file with its -wal and -shm companions, in MiB."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return sum(p.stat().st_size for p in parts if p.exists()) / 2**20


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


class Rounds:
    """Run each measurement in turn, round after round, and keep every round's figure."""

    def __init__(self, rounds: int, unit: str = "chains/s") -> None:
        self.rounds = rounds
        self.unit = unit
        self.figures: dict[str, list[float]] = {}

    def run(self, plan: Mapping[str, Callable[[], float | dict[str, float]]]) -> Rounds:
        """`plan` maps a label to a measurement; one returning a dict adds a figure per key,
        labelled "<label> <key>"."""
        print(f"{self.rounds} round(s), interleaved; {load_note()}", flush=True)
        for n in range(self.rounds):
            for label, measure in plan.items():
                value = measure()
                values = value if isinstance(value, dict) else {"": value}
                for key, figure in values.items():
                    name = f"{label} {key}".strip()
                    self.figures.setdefault(name, []).append(figure)
                    load = os.getloadavg()[0]
                    print(
                        f"  round {n + 1}: {name}: {_fmt(figure)} {self.unit} (load {load:.1f})",
                        flush=True,
                    )
        print(f"done; {load_note()}", flush=True)
        return self

    def median(self, label: str) -> float:
        return statistics.median(self.figures[label])

    def ratio(self, label: str, base: str) -> float:
        """The median of the per-round ratios: each pair ran under the same load."""
        pairs = zip(self.figures[label], self.figures[base], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def added(self, label: str, base: str) -> float:
        """The median of the per-round differences (for latencies)."""
        pairs = zip(self.figures[label], self.figures[base], strict=True)
        return statistics.median(a - b for a, b in pairs)

    def table(self, base: str, *, title: str) -> str:
        width = max(len(label) for label in self.figures)
        lines = [f"{title} (median of {self.rounds}; x = median per-round ratio to {base!r})"]
        for label, values in self.figures.items():
            spread = ", ".join(_fmt(v) for v in values)
            lines.append(
                f"  {label:<{width}}  {_fmt(self.median(label)):>9} {self.unit}  "
                f"{self.ratio(label, base):6.2f}x   rounds: {spread}"
            )
        return "\n".join(lines)
