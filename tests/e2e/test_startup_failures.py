"""A backend that cannot be opened is reported on one line, and `stepline start` exits non-zero
(at once when waiting cannot help, after STEPLINE_STARTUP_TIMEOUT otherwise); SIGTERM stops it
while it waits. A Redis that would evict keys is refused unless the operator says otherwise."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.runtime.redis_support import RedisServer
from tests.support import free_port, write_steps

STEPS = {
    "ping_step.py": """
    config = {"type": "api", "name": "Ping", "path": "/ping", "method": "GET"}

    async def handler(req, ctx):
        return {"pong": True}
"""
}

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server not installed"
)


class Start:
    """`stepline start` (or `worker`) as a subprocess, its output in a file."""

    def __init__(
        self,
        tmp: Path,
        *,
        command: str = "start",
        steps: dict[str, str] | None = None,
        **env: str,
    ) -> None:
        self.port = free_port()
        self.log = tmp / f"start-{self.port}.log"
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("STEPLINE_") and k != "REDIS_URL"
        }
        folder = write_steps(tmp / "steps", steps or STEPS)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app",
                    command,
                    "--steps",
                    str(folder),
                    *(
                        ["--port", str(self.port), "--host", "127.0.0.1"]
                        if command == "start"
                        else []
                    ),
                ],
                env={**base, "STEPLINE_DB": str(tmp / "s.db"), "PYTHONUNBUFFERED": "1", **env},
                cwd=tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_exit(self, timeout: float, what: str) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"stepline start did not exit within {timeout} s {what}:\n{self.output()[-3000:]}"
            ) from None

    def wait_output(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"no {text!r} in the output:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _unreachable_redis() -> dict[str, str]:
    return {"STEPLINE_BACKEND": "redis", "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}


def test_a_file_that_is_not_a_database_exits_non_zero_with_one_line(tmp_path):
    (tmp_path / "s.db").write_text("not a database, just notes\n" * 200)
    start = Start(tmp_path)
    code = start.wait_exit(60, "for a file that is not a database")
    out = start.output()
    assert code != 0
    lines = [line for line in out.splitlines() if "cannot start:" in line]
    assert len(lines) == 1 and "not a database" in lines[0] and "STEPLINE_DB" in lines[0], out
    assert "Traceback" not in out


def test_sigterm_stops_a_server_waiting_for_its_backend(tmp_path):
    start = Start(tmp_path, STEPLINE_STARTUP_TIMEOUT="600", **_unreachable_redis())
    start.wait_output("retrying in", 60)
    start.proc.send_signal(signal.SIGTERM)
    start.wait_exit(20, "after SIGTERM while waiting for Redis")
    assert "Traceback" not in start.output()


def test_sigint_stops_it_too(tmp_path):
    start = Start(tmp_path, STEPLINE_STARTUP_TIMEOUT="600", **_unreachable_redis())
    start.wait_output("retrying in", 60)
    start.proc.send_signal(signal.SIGINT)
    start.wait_exit(20, "after SIGINT while waiting for Redis")


SLOW_LOAD = {
    **STEPS,
    "slow_step.py": """
    import os, pathlib, time

    # A step module slow to import (or a credential check slow to answer): the server takes
    # signals from here on, before it starts waiting for its backend.
    pathlib.Path(os.environ["LOADING_MARK"]).touch()
    time.sleep(3)
    config = {"type": "event", "name": "Slow", "subscribes": ["slow"]}

    async def handler(data, ctx):
        pass
""",
}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_app_loads_still_stops_it(tmp_path, sig):
    mark = tmp_path / "loading"
    start = Start(
        tmp_path,
        steps=SLOW_LOAD,
        LOADING_MARK=str(mark),
        STEPLINE_STARTUP_TIMEOUT="600",
        **_unreachable_redis(),
    )
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert start.proc.poll() is None and time.monotonic() < deadline, start.output()
        time.sleep(0.05)
    start.proc.send_signal(sig)
    # Before, the signal was taken and kept for after start-up, which waited for Redis for
    # STEPLINE_STARTUP_TIMEOUT (600 s here).
    start.wait_exit(30, f"after {sig.name} while the app was loading")
    assert "stopped by a signal" in start.output()
    assert "Traceback" not in start.output()


def test_the_wait_for_an_unreachable_backend_is_bounded(tmp_path):
    start = Start(tmp_path, STEPLINE_STARTUP_TIMEOUT="1", **_unreachable_redis())
    code = start.wait_exit(60, "with STEPLINE_STARTUP_TIMEOUT=1")
    out = start.output()
    assert code != 0
    lines = [line for line in out.splitlines() if "cannot start:" in line]
    assert len(lines) == 1 and "gave up after 1 s" in lines[0] and "REDIS_URL" in lines[0], out


@pytest.mark.parametrize("env", [{}, {"STEPLINE_STARTUP_TIMEOUT": "1", **_unreachable_redis()}])
def test_a_worker_that_cannot_start_says_so_on_one_line(tmp_path, env):
    if not env:
        (tmp_path / "s.db").write_text("not a database, just notes\n" * 200)
    worker = Start(tmp_path, command="worker", **env)
    code = worker.wait_exit(60, "as a worker whose backend cannot be opened")
    out = worker.output()
    lines = [line for line in out.splitlines() if "cannot start:" in line]
    assert code == 1 and len(lines) == 1, out
    assert ("gave up after 1 s" in lines[0]) if env else ("not a database" in lines[0]), out
    assert "Traceback" not in out


@needs_redis_server
def test_an_evicting_redis_is_refused_unless_allowed(tmp_path):
    redis = RedisServer(
        tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru", "--appendonly", "no"
    )
    redis.start()
    try:
        env = {"STEPLINE_BACKEND": "redis", "REDIS_URL": redis.url}
        refused = Start(tmp_path, **env)
        code = refused.wait_exit(60, "for an allkeys-lru Redis")
        line = [x for x in refused.output().splitlines() if "cannot start:" in x]
        assert code != 0 and len(line) == 1, refused.output()
        assert "maxmemory-policy allkeys-lru" in line[0]
        assert "STEPLINE_REDIS_ALLOW_EVICTION" in line[0]

        allowed = Start(tmp_path, STEPLINE_REDIS_ALLOW_EVICTION="1", **env)
        try:
            allowed.wait_output("Uvicorn running", 60)
            r = httpx.get(f"http://127.0.0.1:{allowed.port}/readyz", timeout=5)
            assert r.status_code == 200, r.text
            allowed.wait_output("appendonly no", 60)  # given by the engine's first claim
            assert "evicts keys" in allowed.output()
        finally:
            allowed.proc.send_signal(signal.SIGTERM)
            allowed.wait_exit(20, "after SIGTERM")
    finally:
        redis.stop()
