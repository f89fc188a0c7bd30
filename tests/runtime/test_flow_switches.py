"""Flows that start when configured: off without credentials, an error when half set up,
required by `enabled: true` or STEPLINE_FLOWS, and an off flow's cron steps never fire.

The shipped GitHub and Gmail flows are the plugins under test, read through their real entry
points; the token check talks to the loopback GitHub fake."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from agents.github import services
from app.plugins import flow_states, startup_problems
from app.testing import Harness
from tests.fakes.common import LoopbackServer
from tests.fakes.github_server import FakeGithub
from tests.fakes.slack_server import FakeSlack
from tests.support import write_steps

FLOWS = ("github", "gmail")
ENV = (
    "GITHUB_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_API_URL",
    "GMAIL_CREDENTIALS_FILE",
    "GMAIL_TOKEN_FILE",
    "STEPLINE_FLOWS",
    "STEPLINE_VERIFY_CREDENTIALS",
    "SLACK_BOT_TOKEN",
    "SLACK_API_URL",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project with no credentials at all and no YAML files."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GMAIL_TOKEN_FILE", str(tmp_path / "gmail-token.json"))
    monkeypatch.chdir(tmp_path)  # no stray .env or credentials.json
    services.reset()
    yield tmp_path
    services.reset()


def off_lines(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    return {
        r.getMessage().split()[1]: r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("flow ") and " is off: " in r.getMessage()
    }


def test_no_credentials_means_off_in_one_line_each(project, caplog):
    with caplog.at_level(logging.INFO, "stepline.plugins"):
        assert startup_problems("start", FLOWS) == []
    assert sorted(off_lines(caplog)) == ["github", "gmail"]
    # What the line says (read from the decision: logs mask whatever a test registered as secret)
    states = flow_states(FLOWS)
    assert states["github"][0] == states["gmail"][0] == "off"
    assert "GITHUB_WEBHOOK_SECRET and GITHUB_TOKEN" in states["github"][1][0]
    assert "stepline gmail connect" in states["gmail"][1][0]


def test_only_github_configured_serves_github_and_reports_gmail_off(project, monkeypatch, caplog):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "a" * 36)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("STEPLINE_VERIFY_CREDENTIALS", "0")
    with caplog.at_level(logging.INFO, "stepline.plugins"):
        assert startup_problems("start", FLOWS) == []
    assert list(off_lines(caplog)) == ["gmail"]
    assert "flow github is on" in caplog.text


def test_half_configured_flows_list_every_problem_at_once(project, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "a" * 36)  # no webhook secret
    monkeypatch.setenv("GMAIL_CREDENTIALS_FILE", str(project / "client.json"))  # no such file
    with LoopbackServer(FakeGithub(tokens=("good-token",))) as github:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        problems = startup_problems("start", FLOWS)
    # The token is asked about in the same run as the missing secret, not on the next try.
    assert [p.split(":")[0] for p in problems] == ["github", "github", "gmail", "gmail"]
    assert "GITHUB_WEBHOOK_SECRET is not set" in problems[0]
    assert "GitHub rejected GITHUB_TOKEN" in problems[1]
    assert "Gmail is not connected" in problems[2]
    assert "client.json does not exist" in problems[3]
    monkeypatch.setenv("STEPLINE_VERIFY_CREDENTIALS", "0")  # no network: the rest still listed
    assert [p.split(":")[0] for p in startup_problems("start", FLOWS)] == [
        "github",
        "gmail",
        "gmail",
    ]


def test_a_token_file_that_does_not_parse_is_an_error(project):
    (project / "gmail-token.json").write_text("{oops")
    problems = startup_problems("start", FLOWS)
    assert len(problems) == 1 and "gmail-token.json cannot be read" in problems[0]


def test_push_mode_without_an_audience_is_an_error(project):
    grant = {"refresh_token": "r", "client_id": "c", "client_secret": "s"}
    (project / "gmail-token.json").write_text(json.dumps(grant))
    (project / "config" / "gmail.yaml").write_text(
        "mode: push\npush:\n  topic: projects/p/topics/t\n"
    )
    problems = startup_problems("start", FLOWS)
    assert len(problems) == 1 and "push mode needs push.audience" in problems[0]


def test_enabled_true_or_stepline_flows_makes_a_flow_required(project, monkeypatch, caplog):
    (project / "config" / "gmail.yaml").write_text("enabled: true\n")
    problems = startup_problems("start", FLOWS)
    assert [p.split(":")[0] for p in problems] == ["gmail"]
    monkeypatch.setenv("STEPLINE_FLOWS", "github")
    with caplog.at_level(logging.INFO, "stepline.plugins"):
        problems = startup_problems("start", FLOWS)
    assert {p.split(":")[0] for p in problems} == {"github"}
    assert "gmail" in off_lines(caplog)
    assert "not listed in STEPLINE_FLOWS" in flow_states(FLOWS)["gmail"][1][0]


def test_a_misspelt_flow_in_stepline_flows_is_named_with_the_likely_one(
    project, monkeypatch, caplog
):
    monkeypatch.setenv("STEPLINE_FLOWS", "gihtub")
    with caplog.at_level(logging.WARNING, "stepline.plugins"):
        flow_states(FLOWS)
    assert "STEPLINE_FLOWS names 'gihtub', which no installed flow is called " in caplog.text
    assert "did you mean 'github'?" in caplog.text


def test_enabled_false_turns_a_configured_flow_off(project, monkeypatch, caplog):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "a" * 36)
    (project / "config" / "github.yaml").write_text("enabled: false\n")
    services.reset()
    with caplog.at_level(logging.INFO, "stepline.plugins"):
        assert startup_problems("start", FLOWS) == []
    assert "github" in off_lines(caplog)
    assert "enabled: false" in flow_states(FLOWS)["github"][1][0]


def test_a_token_github_rejects_stops_start_unless_the_check_is_skipped(project, monkeypatch):
    with LoopbackServer(FakeGithub(tokens=("good-token",))) as github:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("GITHUB_TOKEN", "dummy")
        problems = startup_problems("start", FLOWS)
        assert len(problems) == 1 and "GitHub rejected GITHUB_TOKEN" in problems[0]
        assert startup_problems("dev", FLOWS) == []  # dev reloads often: no network check
        monkeypatch.setenv("GITHUB_TOKEN", "good-token")
        assert startup_problems("start", FLOWS) == []
        monkeypatch.setenv("GITHUB_TOKEN", "dummy")
        monkeypatch.setenv("STEPLINE_VERIFY_CREDENTIALS", "0")
        assert startup_problems("start", FLOWS) == []


def test_a_slack_token_slack_rejects_is_listed_once_for_both_flows(project, monkeypatch):
    grant = {"refresh_token": "r", "client_id": "c", "client_secret": "s"}
    (project / "gmail-token.json").write_text(json.dumps(grant))
    with (
        LoopbackServer(FakeGithub(tokens=("good-token",))) as github,
        LoopbackServer(FakeSlack(token="xoxb-right")) as slack,
    ):
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("GITHUB_TOKEN", "good-token")
        monkeypatch.setenv("SLACK_API_URL", f"{slack.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-wrong")
        problems = startup_problems("start", FLOWS)
        assert len(problems) == 1, problems
        assert problems[0].startswith(
            "github, gmail: Slack rejected SLACK_BOT_TOKEN (invalid_auth)"
        )
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-right")
        assert startup_problems("start", FLOWS) == []


CRON = """
config = {{"type": "cron", "name": "{name}", "cron": "* * * * *", "flows": ["{flow}"]}}

async def handler(ctx):
    await ctx.state.increment("ran", "{name}")
"""


async def test_cron_steps_of_an_off_flow_never_fire(project):
    steps = write_steps(
        project / "steps",
        {
            "poll_step.py": CRON.format(name="Poll", flow="gmail"),
            "mine_step.py": CRON.format(name="Mine", flow="reports"),
        },
    )
    clock = [datetime(2026, 3, 2, 8, 0, 30).timestamp()]
    async with Harness([steps], db=project / "t.db", clock=lambda: clock[0]) as h:
        await h.runtime.cron.stop()  # this test drives the ticks itself
        for minute in range(1, 4):
            clock[0] += 60
            assert await h.runtime.cron.tick() == ["Mine"], f"minute {minute}"
        await h.drain()
        assert await h.state.get("ran", "Poll") is None
        assert await h.state.get("ran", "Mine") == 3
        await h.run_cron("Poll")  # by hand it still runs
        await h.drain()
        assert await h.state.get("ran", "Poll") == 1


async def test_a_flow_connected_while_running_starts_its_cron_steps(project, caplog):
    """`stepline gmail connect` in another shell while `dev` runs: the poll starts within
    FLOW_RECHECK seconds, without a restart."""
    steps = write_steps(project / "steps", {"poll_step.py": CRON.format(name="Poll", flow="gmail")})
    clock = [datetime(2026, 3, 2, 8, 0, 30).timestamp()]
    async with Harness([steps], db=project / "t.db", clock=lambda: clock[0]) as h:
        assert h.runtime.cron._task is not None  # running, though its only flow is off
        await h.runtime.cron.stop()  # this test drives the ticks itself
        clock[0] += 60
        assert await h.runtime.cron.tick() == []
        grant = {"refresh_token": "r", "client_id": "c", "client_secret": "s"}
        (project / "gmail-token.json").write_text(json.dumps(grant))
        clock[0] += 60
        with caplog.at_level(logging.INFO, "stepline.cron"):
            assert await h.runtime.cron.tick() == ["Poll"]
        assert "flow gmail is on now: its cron steps fire" in caplog.text
        (project / "gmail-token.json").unlink()  # and off again
        clock[0] += 60
        assert await h.runtime.cron.tick() == []
