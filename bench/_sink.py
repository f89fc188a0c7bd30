"""Completion records that cross processes, so every harness (Stepline's workers, the raw
consumers, huey, dramatiq, Celery) ends its chain the same way and is timed the same way.

The last step of a chain calls `record(i)`: one line `i monotonic-time` appended to a file of its
own process under $BENCH_SINK_DIR. The harness reads the files back with `collect`, which waits
until every id arrived, refuses one that arrived twice, and returns the last completion time.
CLOCK_MONOTONIC is one clock for the whole machine on Linux, so a producer's start time and a
worker's completion time subtract cleanly. Standard library only: the peers' venv imports this.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["WARMUP", "SinkError", "collect", "record", "sink_env"]

# The id of the one chain each harness runs before timing starts (imports, connections, JIT-free
# but cold caches): it is left out of every count.
WARMUP = -1

_file: IO[str] | None = None
_pid = 0


class SinkError(RuntimeError):
    """An id went missing or arrived twice."""


def sink_env(directory: Path) -> dict[str, str]:
    """The environment a worker process needs for `record` to find its directory."""
    return {"BENCH_SINK_DIR": str(directory)}


def record(i: int) -> None:
    """Called by the last step of a chain. Line-buffered so the harness sees it at once."""
    global _file, _pid
    if _file is None or _pid != os.getpid():  # prefork workers inherit the parent's module
        directory = os.environ.get("BENCH_SINK_DIR")
        if not directory:
            raise SinkError("BENCH_SINK_DIR is not set: start workers with sink_env(dir)")
        _pid = os.getpid()
        _file = open(Path(directory) / f"{_pid}.ids", "a", buffering=1)  # noqa: SIM115
    _file.write(f"{i} {time.monotonic():.6f}\n")


def collect(
    directory: Path,
    want: int,
    *,
    ids: range | None = None,
    timeout: float = 300.0,
    alive: Callable[[], bool] | None = None,
) -> float:
    """Wait until each id of `ids` (default `range(want)`) was recorded; return the latest
    completion time. `alive`, a callable returning False once a worker died, ends the wait early.
    """
    expected = set(ids if ids is not None else range(want))
    seen: dict[int, int] = {}
    offsets: dict[Path, int] = {}
    last = 0.0
    deadline = time.monotonic() + timeout
    while True:
        for path in directory.glob("*.ids"):
            with path.open("rb") as f:
                f.seek(offsets.get(path, 0))
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            offsets[path] = offsets.get(path, 0) + len(complete)
            for line in complete.decode().split("\n")[:-1]:
                i_text, at = line.split()
                i = int(i_text)
                if i in expected:
                    seen[i] = seen.get(i, 0) + 1
                    last = max(last, float(at))
        twice = [i for i, n in seen.items() if n > 1]
        if twice:
            raise SinkError(f"{len(twice)} chain(s) completed twice, e.g. id {twice[0]}")
        if len(seen) == len(expected):
            return last
        if time.monotonic() > deadline or (alive is not None and not alive()):
            why = "a worker died" if time.monotonic() <= deadline else f"{timeout:g} s passed"
            missing = sorted(expected - seen.keys())
            raise SinkError(
                f"{why} with {len(missing)} of {len(expected)} chains unfinished "
                f"(first missing id {missing[0]}); see the worker logs"
            )
        time.sleep(0.01)
