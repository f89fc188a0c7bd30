"""`stepline start` on the shipped project: a flow without credentials is off (one line), a
half-configured flow stops start with every problem listed at once."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import ROOT
from tests.e2e.server import SteplineProcess
from tests.fakes.common import LoopbackServer
from tests.fakes.github_server import FakeGithub
from tests.support import free_port

# Whatever the developer's shell holds, the child starts from "nothing configured".
BLANK = {
    name: ""
    for name in (
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY_FILE",
        "GITHUB_WEBHOOK_SECRET",
        "GITHUB_API_URL",
        "GMAIL_CREDENTIALS_FILE",
        "GMAIL_WEBHOOK_TOKEN",
        "SLACK_BOT_TOKEN",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    )
}


def project_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **BLANK,
        "STEPLINE_CONFIG_DIR": str(ROOT / "config"),
        "STEPLINE_LOG_LEVEL": "INFO",
        "GMAIL_TOKEN_FILE": str(tmp_path / "gmail-token.json"),
        **extra,
    }


def test_only_github_set_serves_github_and_reports_gmail_off_in_one_line(tmp_path):
    with LoopbackServer(FakeGithub(tokens=("ghp_the-real-one",))) as github:
        env = project_env(
            tmp_path,
            GITHUB_TOKEN="ghp_the-real-one",
            GITHUB_WEBHOOK_SECRET="s3cret",
            GITHUB_API_URL=github.url,
        )
        with SteplineProcess(ROOT / "steps", tmp_path / "s.db", env=env, cwd=tmp_path) as app:
            body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
            signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            ping = httpx.post(
                f"{app.url}/webhooks/github",
                content=body,
                headers={
                    "X-GitHub-Event": "ping",
                    "X-GitHub-Delivery": "d-1",
                    "X-Hub-Signature-256": signature,
                    "Content-Type": "application/json",
                },
            )
            assert ping.status_code < 300, ping.text
            output = app.output()
    off = [line for line in output.splitlines() if " is off: " in line]
    assert len(off) == 1 and "flow gmail is off" in off[0], output
    assert "stepline gmail connect" in off[0]
    assert "flow github is on" in output
    assert "no step subscribes" not in output and "no step emits" not in output


def test_half_configured_gmail_exits_1_listing_every_problem(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "gmail.yaml").write_text("mode: push\n")
    env = {
        **project_env(
            tmp_path,
            STEPLINE_CONFIG_DIR=str(config),
            GMAIL_CREDENTIALS_FILE=str(tmp_path / "client_secret.json"),
            GITHUB_TOKEN="ghp_" + "x" * 36,
        ),
        "STEPLINE_DB": str(tmp_path / "s.db"),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "start",
            "--no-verify",
            "--steps",
            str(ROOT / "steps"),
            "--port",
            str(free_port()),
            "--host",
            "127.0.0.1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    refused = [
        line.split("cannot start: ", 1)[1]
        for line in done.stderr.splitlines()
        if "cannot start: " in line
    ]
    assert [r.split(": ")[0] for r in refused] == ["github", "gmail", "gmail", "gmail"], refused
    assert "GITHUB_WEBHOOK_SECRET is not set" in refused[0]
    assert "push mode needs push.topic and push.audience" in refused[1]
    assert "Gmail is not connected" in refused[2]
    assert "client_secret.json does not exist" in refused[3]
