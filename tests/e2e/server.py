"""Run a real `stepline` subprocess on a free port and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["SteplineProcess", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SteplineProcess:
    """`stepline <command>` with its own steps, database and port; stopped on exit."""

    def __init__(self, steps: Path, db: Path, *, command: str = "start",
                 env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = command
        self.log = log or db.with_suffix(f".{self.port}.log")
        self.env = {**os.environ, "STEPLINE_DB": str(db), "STEPLINE_STEPS": str(steps),
                    "STEPLINE_POLL_INTERVAL": "0.05", "STEPLINE_LEASE_SECONDS": "2",
                    "STEPLINE_RETRY_BASE": "0.05", "STEPLINE_RETRY_MAX": "0.2",
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> SteplineProcess:
        args = [sys.executable, "-m", "app", self.command, "--port", str(self.port),
                "--host", "127.0.0.1"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stepline exited with {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"stepline did not answer /healthz within {timeout} s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def __enter__(self) -> SteplineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
