"""Run a real `stepline` subprocess on a free port and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port

__all__ = ["SteplineProcess"]

START_TIMEOUT = 30.0


class SteplineProcess:
    """`stepline <command>` with its own steps, database and port; stopped on exit.

    The child gets the test's environment minus any STEPLINE_* or REDIS_URL of the caller, so
    a developer's shell settings cannot leak in, plus short retry and poll intervals.
    """

    def __init__(
        self,
        steps: Path,
        db: Path,
        *,
        command: str = "start",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        wait_path: str = "/healthz",
        workers: int = 0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = command
        self.steps = steps
        self.cwd = cwd
        self.wait_path = wait_path
        self.workers = workers
        self.log = db.with_name(f"stepline-{command}-{self.port}.log")
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("STEPLINE_") and k != "REDIS_URL"
        }
        self.env = {
            **base,
            "STEPLINE_DB": str(db),
            "STEPLINE_POLL_INTERVAL": "0.05",
            "STEPLINE_LEASE_SECONDS": "2",
            "STEPLINE_RETRY_BASE": "0.05",
            "STEPLINE_RETRY_MAX": "0.2",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def start(self, timeout: float = START_TIMEOUT) -> SteplineProcess:
        args = [
            sys.executable,
            "-m",
            "app",
            self.command,
            "--steps",
            str(self.steps),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
        ]
        if self.workers:
            args += ["--workers", str(self.workers)]
        with self.log.open("ab") as out:
            # Its own process group: `dev` runs a reloader plus a server process.
            self.process = subprocess.Popen(
                args,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"stepline {self.command} exited with "
                    f"{self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + self.wait_path, timeout=1).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"stepline {self.command} did not answer {self.wait_path} within "
            f"{timeout} s:\n{self.output()}"
        )

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
                raise
        self._wait_group_gone(timeout)
        return self.process.returncode

    def _wait_group_gone(self, timeout: float) -> None:
        """Worker children may outlive the leader briefly; wait so nothing writes after us."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)
        os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> SteplineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
