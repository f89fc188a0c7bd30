"""The bench scripts still run (tiny sizes; no figure is checked, speed belongs to bench/) and
leave no temporary directory behind, also when interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    # TMPDIR: the scripts' scratch directories land under tmp_path, where we can look for them.
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    return out


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.glob("stepline-bench-*"))


def test_chain_bench_labels_each_producer_beside_the_ceiling(tmp_path: Path) -> None:
    out = finish(bench(tmp_path, "chain.py", "--chains", "100", "--rounds", "1"))
    table = out[out.index("3-step chain, 100 chains") :]
    for label in (
        "raw SQLite ceiling",
        "batched (1,000 per commit)",
        "1 emit/chain, 64 producers",
        "1 emit/chain, sequential",
    ):
        assert label in table
    assert leftovers(tmp_path) == []


def test_interrupted_bench_removes_its_scratch_directory(tmp_path: Path) -> None:
    proc = bench(tmp_path, "chain.py", "--long", "2000000")  # minutes of work if left alone
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("stepline-bench-*/*/bench.db")):
        assert proc.poll() is None and time.monotonic() < deadline, "no Stepline run started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert leftovers(tmp_path) == []


def test_flow_control_bench_prints_each_ratio_to_the_plain_chain(tmp_path: Path) -> None:
    out = finish(bench(tmp_path, "flow_control.py", "--quick"))
    assert "key, 1 per key / plain:" in out and "key + rate limit / plain:" in out
    assert leftovers(tmp_path) == []


def test_api_latency_layers_prints_what_each_layer_adds(tmp_path: Path) -> None:
    out = finish(
        bench(
            tmp_path,
            "api_latency.py",
            "--quick",
            "--layers",
            "--seconds",
            "1",
            "--wrk-seconds",
            "1",
        )
    )
    # Every layer's server answered each signed request 202 (api_latency exits otherwise).
    table = out[out.index("layer by layer") :].splitlines()[2:8]
    assert [line.strip().split("  ")[0] for line in table] == [
        "bare FastAPI",
        "api step 202",
        "+ HMAC",
        "+ body model",
        "+ emit, no consumer",
        "+ consumer",
    ], table
    assert "added by Stepline over bare FastAPI" in out  # the default lines are still there
    assert leftovers(tmp_path) == []
