"""Secrets stay masked on every surface the runtime has: log text (not only fields), tracebacks
and exception text of failing steps, dead letters, and `stepline state get/list`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.redact import forget_known_secrets
from app.testing import Harness
from tests.support import write_steps

# Secrets in no known format: only registration by value can mask them.
PUSH_TOKEN = "q7Rw2Zt9Lm4Xv8Kp3Nc6"
WORKBENCH_TOKEN = "wb-Hs83Jd72Kq01Mz55"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"

STEPS = {
    "hook_step.py": f"""
        config = {{"type": "api", "name": "Hook", "path": "/hook", "method": "POST",
                   "emits": ["job"]}}

        async def handler(req, ctx):
            ctx.logger.info("calling upstream with token {PUSH_TOKEN} and key {STRIPE}")
            if req.body.get("fail"):
                raise RuntimeError("upstream refused postgres://app:Sup3rS3cret9@db/app "
                                   "with {PUSH_TOKEN}")
            await ctx.emit("job", {{"n": 1}})
            return {{"status": 202, "body": {{}}}}
    """,
    "job_step.py": f"""
        config = {{"type": "event", "name": "Job", "subscribes": ["job"], "retries": 1}}

        async def handler(data, ctx):
            ctx.logger.warning("retrying as {WORKBENCH_TOKEN}", auth="{PUSH_TOKEN}")
            raise ValueError("refused: Authorization: Bearer {PUSH_TOKEN}")
    """,
}


@pytest.fixture
def known(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    forget_known_secrets()
    monkeypatch.setenv("GMAIL_WEBHOOK_TOKEN", PUSH_TOKEN)
    yield
    forget_known_secrets()


def _no_secret(text: str) -> None:
    for secret in (PUSH_TOKEN, WORKBENCH_TOKEN, STRIPE, "Sup3rS3cret9"):
        assert secret not in text


@pytest.mark.usefixtures("known")
async def test_log_text_tracebacks_and_dead_letters_are_masked(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    steps = write_steps(tmp_path / "steps", STEPS)
    caplog.set_level(logging.INFO)
    async with Harness([steps], workbench_token=WORKBENCH_TOKEN) as h:
        failed = await h.post("/hook", json={"fail": True})
        assert failed.status_code == 500
        _no_secret(failed.text)
        assert (await h.post("/hook", json={})).status_code == 202
        await h.drain()
        logs = await h.logs()
        spans = await h.spans()
        dead = await h.dead_letters()
    # The handler's own log lines: text and fields, as stored with the span and as logged.
    texts = [e.message for e in logs] + [json.dumps(e.fields) for e in logs]
    assert any("calling upstream with token ***" in t for t in texts)
    _no_secret("\n".join(texts))
    # The failing API step's traceback and exception text, in the process log.
    assert "upstream refused postgres://app:***@db/app" in caplog.text
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text
    _no_secret(caplog.text)
    # The failed event run: its error and traceback as stored in the dead letter and span.
    assert len(dead) == 1 and "Bearer ***" in dead[0].error and "Bearer ***" in dead[0].traceback
    _no_secret(dead[0].error + dead[0].traceback)
    _no_secret(" ".join(s.error or "" for s in spans if s.step == "Job"))
    # The failed API run's span, as stored (every reader of the store, not only the Workbench).
    hook = [s.error for s in spans if s.step == "Hook" and s.status == "failed"]
    assert len(hook) == 1 and hook[0] and "postgres://app:***@db/app" in hook[0]
    _no_secret(hook[0])


@pytest.mark.usefixtures("known")
def test_state_get_and_list_print_secrets_masked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STEPLINE_STEPS", str(write_steps(tmp_path / "steps", {})))
    monkeypatch.setenv("STEPLINE_DB", str(tmp_path / "cli.db"))
    run = CliRunner().invoke
    assert (
        run(cli, ["state", "set", "creds", "api_token", json.dumps("plain-value")]).exit_code == 0
    )
    note = {"sent": f"pushed with {PUSH_TOKEN}", "key": STRIPE, "count": 2}
    assert run(cli, ["state", "set", "creds", "note", json.dumps(note)]).exit_code == 0

    got = run(cli, ["state", "get", "creds", "api_token"])
    assert got.exit_code == 0 and json.loads(got.output) == "***"
    got = run(cli, ["state", "get", "creds", "note"])
    assert json.loads(got.output) == {"sent": "pushed with ***", "key": "***", "count": 2}
    listed = run(cli, ["state", "list", "creds"])
    assert json.loads(listed.output) == {
        "api_token": "***",
        "note": {"sent": "pushed with ***", "key": "***", "count": 2},
    }
    _no_secret(listed.output + got.output)


@pytest.mark.usefixtures("known")
def test_every_log_record_is_masked_and_keeps_its_arguments_when_it_can(caplog) -> None:
    from app.logger import mask_log_records
    from app.redact import register_known_secrets

    register_known_secrets(environ={"GMAIL_WEBHOOK_TOKEN": PUSH_TOKEN}, env_file=None)
    mask_log_records()
    log = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO, logger="some.library"):
        # A secret as an argument: masked in place, so formatters that unpack args still work.
        log.info('%s - "%s %s" %d', "127.0.0.1", "GET", f"/hook?auth={PUSH_TOKEN}", 200)
        # A secret only in its context ("password=" then the argument): masked as a whole.
        log.warning("retry with password=%s", "Zx81kq0Lm3")
        try:
            raise ConnectionError(f"refused {STRIPE}")
        except ConnectionError:
            log.exception("upstream failed")
    access, retry, failed = caplog.records
    assert isinstance(access.args, tuple) and len(access.args) == 4
    assert access.getMessage() == '127.0.0.1 - "GET /hook?auth=***" 200'
    assert retry.getMessage() == "retry with password=***"
    assert failed.exc_text and "ConnectionError: refused ***" in failed.exc_text
    _no_secret(caplog.text)


def test_a_tests_registered_secret_does_not_mask_the_next_tests_output(tmp_path) -> None:
    """Stepline's pytest plugin forgets registered secrets after each test."""
    (tmp_path / "test_two.py").write_text(
        "from app.redact import redact_text, register_secret\n\n"
        "def test_one():\n"
        "    register_secret('made-up-token-1')\n"
        "    assert redact_text('made-up-token-1') == '***'\n\n"
        "def test_two():\n"
        "    assert redact_text('made-up-token-1') == 'made-up-token-1'\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
