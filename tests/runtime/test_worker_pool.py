"""`stepline start --workers N`: a worker that keeps crashing is restarted at most five times a
minute per worker, and the pool says so once, not on every check (real worker processes)."""

from __future__ import annotations

import logging
import time

import pytest

from app.worker import WorkerPool
from tests.support import write_steps


def test_a_crash_looping_worker_is_held_back_and_said_once(tmp_path, monkeypatch, caplog):
    steps = write_steps(tmp_path / "steps", {"bad_step.py": "raise RuntimeError('boom')\n"})
    monkeypatch.setenv("STEPLINE_STEPS", str(steps))
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "app.db"))
    caplog.set_level(logging.ERROR, logger="stepline.worker")
    pool = WorkerPool(1, grace=1.0, poll=0.05)

    def exits() -> list[str]:
        return [r.getMessage() for r in caplog.records if "exited with" in r.getMessage()]

    pool.start()
    try:
        deadline = time.monotonic() + 120
        while len(exits()) < 6:
            if time.monotonic() > deadline:
                pytest.fail(f"the pool did not reach its restart limit: {exits()}")
            time.sleep(0.1)
        time.sleep(1.0)  # twenty more checks of the dead worker
    finally:
        pool.stop()
    said = exits()
    assert sum("starting another" in m for m in said) == 5, said
    held = [m for m in said if "no more until" in m]
    assert len(held) == 1 and "5 restarts in the last minute" in held[0], said
    assert len(said) == 6, said
