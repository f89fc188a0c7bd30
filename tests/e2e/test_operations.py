"""Operating Stepline as real processes: the app served the usual FastAPI way is in production
mode, workers never outlive `stepline start`, and the version and module entry points work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import SteplineProcess
from tests.support import free_port, write_steps

REPO = Path(__file__).resolve().parents[2]

CRON_STEPS = {
    "tick_step.py": """
        config = {"type": "event", "name": "Tick", "subscribes": ["tick"]}

        async def handler(data, ctx):
            pass
    """,
}


def _clean_env(**extra: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STEPLINE_", "GITHUB_", "GMAIL_", "SLACK_", "OPENAI_"))
        and k != "REDIS_URL"
    }
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


def test_the_uvicorn_factory_app_is_in_production_mode(tmp_path):
    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = _clean_env(
        STEPLINE_DB=str(tmp_path / "s.db"),
        STEPLINE_STEPS=str(REPO / "steps"),
        STEPLINE_CONFIG_DIR=str(REPO / "config"),
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.server.main:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"uvicorn exited:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no /healthz:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        # A loopback Host would open the admin API in dev; here the token is required.
        state = httpx.put(
            url + "/_stepline/state/g/k", json={"value": 1}, headers={"host": "localhost"}
        )
        assert state.status_code in (401, 403), state.text
        assert "STEPLINE_WORKBENCH_TOKEN" in state.text
        assert httpx.get(url + "/metrics", headers={"host": "localhost"}).status_code in (401, 403)
        body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
        hook = httpx.post(
            url + "/webhooks/github",
            content=body,
            headers={
                "x-github-event": "ping",
                "x-github-delivery": "d-1",
                "content-type": "application/json",
            },
        )
        assert hook.status_code >= 400, hook.text
        assert hook.status_code != 500
        docs = httpx.get(url + "/docs")
        assert docs.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in docs.text
        assert "cdn." not in docs.text
        js = httpx.get(url + "/docs/static/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        redoc = httpx.get(url + "/redoc")
        assert redoc.status_code == 200 and "/docs/static/redoc.standalone.js" in redoc.text
        assert "fonts.googleapis" not in redoc.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _workers_of(app: SteplineProcess, count: int) -> list[int]:
    assert app.process is not None
    deadline = time.monotonic() + 30
    while True:
        kids = [p for p in _children(app.process.pid) if _alive(p)]
        if len(kids) >= count and "worker running" in app.output():
            return kids
        assert time.monotonic() < deadline, f"no {count} workers:\n{app.output()}"
        time.sleep(0.1)


def _wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_worker_outlives_the_parent(tmp_path, how):
    steps = write_steps(tmp_path / "steps", CRON_STEPS)
    app = SteplineProcess(steps, tmp_path / "w.db", workers=2)
    app.start()
    try:
        workers = _workers_of(app, 2)
        assert app.process is not None
        os.kill(app.process.pid, how)  # the main process only, as docker stop or kill does
        app.process.wait(timeout=30)
        left = _wait_gone(workers)
        assert left == [], f"workers {left} outlived the parent:\n{app.output()}"
    finally:
        app.stop()


def test_version_and_python_dash_m_stepline():
    out = subprocess.run(
        [sys.executable, "-m", "stepline", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.startswith("stepline ")
    version = out.stdout.split()[1]
    assert version[0].isdigit()
    again = subprocess.run(
        [sys.executable, "-m", "app", "--version"], capture_output=True, text=True, timeout=60
    )
    assert again.stdout.split() == ["stepline", version]


def _reasons(app: SteplineProcess) -> tuple[int, list[str]]:
    r = httpx.get(app.url + "/readyz", timeout=10)
    return r.status_code, r.json().get("reasons", [])


def _until_reasons(
    app: SteplineProcess,
    want: Callable[[int, list[str]], bool],
    what: str,
    timeout: float = 30,
) -> tuple[int, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        status, reasons = _reasons(app)
        if want(status, reasons):
            return status, reasons
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {reasons}"
        time.sleep(0.2)


def test_readyz_names_a_dead_worker(tmp_path):
    steps = write_steps(tmp_path / "steps", CRON_STEPS)
    app = SteplineProcess(steps, tmp_path / "w.db", workers=2)
    app.start()
    try:
        first, second = _workers_of(app, 2)
        _until_reasons(app, lambda s, r: s == 200, "/readyz 200 with both workers up")
        os.kill(first, signal.SIGTERM)  # a graceful stop of one worker: it is not restarted
        _, reasons = _until_reasons(app, lambda s, r: s == 503, "/readyz to name it")
        assert len(reasons) == 1, reasons
        assert f"(pid {first}) exited with code 0" in reasons[0]
        assert "is not restarted" in reasons[0]
        os.kill(second, signal.SIGKILL)  # a crash: the pool starts another
        _until_reasons(
            app,
            lambda s, r: r == reasons and _replaced(app, second),
            "the killed worker to be replaced",
        )
    finally:
        app.stop()


def _replaced(app: SteplineProcess, dead: int) -> bool:
    # A replacement is started by the pool's watcher thread: the child of that thread.
    assert app.process is not None
    kids = []
    for task in Path(f"/proc/{app.process.pid}/task").glob("*/children"):
        kids += [int(p) for p in task.read_text().split()]
    alive = [p for p in kids if _alive(p)]
    return len(alive) == 1 and dead not in alive
