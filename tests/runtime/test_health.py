"""Health that tells the truth: `/livez` only says the process answers; `/readyz` (and
`/healthz`) fail, with the reason, when the database is corrupt or read-only, when a background
task died, or when a step did not load. A stalled engine is never silent."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from app.errors import BackendError
from app.runtime import Runtime
from app.settings import Settings
from app.testing import Harness
from tests.support import write_steps

STEPS = {
    "take_step.py": """
        config = {"type": "api", "name": "Take", "path": "/take", "method": "POST",
                  "emits": ["job"]}

        async def handler(req, ctx):
            await ctx.emit("job", req.body)
            return {"status": 202}
    """,
    "job_step.py": """
        config = {"type": "event", "name": "Job", "subscribes": ["job"]}

        async def handler(data, ctx):
            await ctx.state.increment("done", "jobs")
    """,
}


async def until(check, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def readyz(app: Harness) -> tuple[int, list[str]]:
    r = await app.get("/readyz")
    return r.status_code, r.json().get("reasons", [])


async def test_a_healthy_app_is_live_and_ready(tmp_path):
    async with Harness([write_steps(tmp_path / "s", STEPS)]) as app:
        assert (await app.get("/livez")).json() == {"status": "ok"}
        assert await readyz(app) == (200, [])
        assert (await app.get("/healthz")).json() == {"status": "ok"}


async def test_a_step_that_failed_to_load_makes_readyz_503(tmp_path):
    broken = {**STEPS, "bad_step.py": "config = {'type': 'event', 'name': 'Bad'}\n"}
    async with Harness([write_steps(tmp_path / "s", broken)]) as app:
        status, reasons = await readyz(app)
        assert status == 503 and "bad_step.py" in reasons[0]
        assert (await app.get("/livez")).status_code == 200
        assert (await app.get("/healthz")).status_code == 200


def _corrupt(db: Path) -> None:
    """Overwrite the pages of the delivery table and its index, as a bad disk would."""
    conn = sqlite3.connect(db)
    roots = [
        r
        for (r,) in conn.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'deliveries'")
    ]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as f:
        for root in roots:
            f.seek((root - 1) * size)
            f.write(b"\xff" * size)


async def test_a_corrupted_page_makes_readyz_503_and_the_cause_is_logged(tmp_path, caplog):
    steps = write_steps(tmp_path / "s", STEPS)
    db = tmp_path / "stepline.db"
    async with Harness([steps], db=db) as app:
        for i in range(300):
            await app.emit("job", {"i": i})
        await app.drain()
    _corrupt(db)
    caplog.set_level(logging.ERROR)
    async with Harness([steps], db=db) as app:
        r = await app.post("/take", json={"i": 1})
        assert r.status_code == 503 and "retry later" in r.json()["error"]
        status, reasons = await readyz(app)
        assert status == 503 and any("malformed" in r for r in reasons), reasons
        assert (await app.get("/healthz")).status_code == 503
        assert (await app.get("/livez")).status_code == 200
        await until(
            lambda: _logged(caplog, "database disk image is malformed"),
            "the engine to log why it cannot claim work",
        )


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)


def _immutable(path: Path, on: bool) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return done.returncode == 0


async def test_a_read_only_database_makes_readyz_503(tmp_path):
    steps = write_steps(tmp_path / "s", STEPS)
    db = tmp_path / "stepline.db"
    async with Harness([steps], db=db) as app:
        await app.emit("job", {"i": 0})
        await app.drain()
    # As root, file modes do not stop writes; the immutable flag does (CAP_LINUX_IMMUTABLE).
    if not _immutable(db, True):
        db.chmod(0o444)
        try:
            db.open("r+b").close()
        except PermissionError:
            pass
        else:
            pytest.skip("cannot make the database read-only here (no chattr +i, running as root)")
    try:
        async with Harness([steps], db=db) as app:
            r = await app.post("/take", json={"i": 1})
            assert r.status_code == 503
            status, reasons = await readyz(app)
            assert status == 503 and any("readonly" in r for r in reasons), reasons
            assert (await app.get("/healthz")).status_code == 503
            _immutable(db, False)
            db.chmod(0o644)
            # Writable again: /readyz's probe opens new connections (SQLite keeps one that
            # found the file read-only so), and work goes on without a restart.
            assert await readyz(app) == (200, [])
            assert (await app.post("/take", json={"i": 2})).status_code == 202
            await app.drain()
            assert await app.state.get("done", "jobs") == 2
    finally:
        _immutable(db, False)
        db.chmod(0o644)


def _small_disk(path: Path, size: str) -> bool:
    """A tmpfs of `size` at `path`, a disk that really fills (needs root)."""
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    return subprocess.run(mount, capture_output=True).returncode == 0


async def test_a_full_disk_is_unready_until_it_takes_writes_again_with_no_traffic(tmp_path):
    disk = tmp_path / "disk"
    if not _small_disk(disk, "1m"):
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        async with Harness([write_steps(tmp_path / "s", STEPS)], db=disk / "s.db") as app:
            pad = "x" * 50_000
            for i in range(200):
                r = await app.post("/take", json={"i": i, "pad": pad})
                if r.status_code != 202:
                    break
            assert r.status_code == 503, "the 1 MiB disk never filled"
            status, reasons = await readyz(app)
            assert status == 503 and any("disk is full" in x for x in reasons), reasons
            grow = ["mount", "-o", "remount,size=64m", str(disk)]
            subprocess.run(grow, check=True, capture_output=True)
            # No request comes to write (a load balancer took the pod out): /readyz's own
            # write probe sees the space is back.
            assert await readyz(app) == (200, [])
            assert (await app.get("/healthz")).status_code == 200
            assert (await app.post("/take", json={"i": -1})).status_code == 202
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


async def test_a_file_that_is_not_a_database_fails_at_once_with_the_fix(tmp_path):
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 100)
    runtime = Runtime(Settings(steps=[tmp_path], db=db, startup_timeout=600))
    with pytest.raises(BackendError, match=r"not a database.*STEPLINE_DB"):
        await asyncio.wait_for(runtime.start(wait=True), 10)


FLOW_STEP = {
    "hook_step.py": """
        config = {"type": "api", "name": "Hook", "path": "/hook", "method": "POST",
                  "flows": ["github"]}

        async def handler(req, ctx):
            return {"ok": True}
    """,
}
_FLOW_ENV = (
    "GITHUB_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "GITHUB_WEBHOOK_SECRET",
    "STEPLINE_FLOWS",
)


async def test_readyz_names_what_a_required_flow_lacks_and_never_its_secrets(tmp_path, monkeypatch):
    from agents.github import services

    for name in _FLOW_ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    services.reset()
    steps = write_steps(tmp_path / "s", FLOW_STEP)
    try:
        async with Harness([steps]) as app:
            # No credentials at all: the flow is off, and an off flow is ready.
            assert await readyz(app) == (200, [])
            token = "ghp_" + "Zq7" * 12
            monkeypatch.setenv("GITHUB_TOKEN", token)  # half set up: no webhook secret
            r = await app.get("/readyz")
            assert r.status_code == 503
            assert r.json()["reasons"] == [
                "flow github is not configured: GITHUB_WEBHOOK_SECRET is not set: set it to "
                "your webhook's secret, so forged deliveries are refused"
            ]
            assert token not in r.text
            # /healthz stays what it was: the backend only.
            assert (await app.get("/healthz")).status_code == 200
            monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "webhook-s3cret")
            assert await readyz(app) == (200, [])  # fixed while running: ready again
            monkeypatch.setenv("STEPLINE_FLOWS", "gmail")  # not required: off, so ready
            monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
            assert await readyz(app) == (200, [])
            monkeypatch.delenv("STEPLINE_FLOWS")
            (tmp_path / "config" / "github.yaml").write_text("enabled: false\n")
            services.reset()
            assert await readyz(app) == (200, [])
    finally:
        services.reset()


async def test_readyz_answers_503_in_time_when_redis_hangs(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine")
    from tests.runtime.redis_support import RedisServer

    redis = RedisServer(tmp_path)
    redis.start()
    assert redis.proc is not None
    try:
        steps = write_steps(tmp_path / "s", STEPS)
        async with Harness(
            [steps],
            backend="redis",
            redis_url=redis.url,
            redis_prefix=f"ready-{os.getpid()}",
            ready_timeout=0.5,
        ) as app:
            assert await readyz(app) == (200, [])
            os.kill(redis.proc.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
            try:
                status, reasons = await asyncio.wait_for(readyz(app), 30)
                assert status == 503
                assert reasons == [
                    "the redis backend did not answer a ping within 0.5 s "
                    "(STEPLINE_READY_TIMEOUT): it is overloaded, paused or unreachable"
                ]
                assert (await asyncio.wait_for(app.get("/livez"), 30)).status_code == 200
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            await until(
                lambda: _ready(app), "/readyz to be 200 once Redis answers again", timeout=30
            )
    finally:
        redis.stop()


async def _ready(app: Harness) -> bool:
    return (await app.get("/readyz")).status_code == 200


async def test_a_readiness_check_that_breaks_or_hangs_is_a_reason_not_a_500(tmp_path):
    async def broken() -> list[str]:
        raise KeyError("a bug in a check")

    async def hung() -> list[str]:
        await asyncio.Event().wait()
        return []

    async with Harness([write_steps(tmp_path / "s", STEPS)], ready_timeout=0.2) as app:
        app.runtime.readiness_checks += [broken, hung]
        status, reasons = await asyncio.wait_for(readyz(app), 30)
        assert status == 503
        assert all(r.startswith("the readiness check of test_a_") for r in reasons), reasons
        assert [r.split(".<locals>.")[1] for r in reasons] == [
            "broken failed (KeyError); see the log",
            "hung did not finish within 0.2 s",
        ]
