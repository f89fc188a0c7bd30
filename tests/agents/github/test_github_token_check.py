"""`stepline start` refuses a GITHUB_TOKEN only when GitHub calls it invalid (401), and says
what it asked: an installation's token (GitHub Actions') or a used-up quota answers 403 to
GET /user, yet the token works."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.github import plugin
from tests.fakes.common import LoopbackServer, Reply
from tests.fakes.github_server import FakeGithub, FakePull

PAT = "ghp_" + "k" * 36
ACTIONS = "ghs_" + "a" * 36


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGithub]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    fake = FakeGithub(tokens=(PAT,))
    fake.installation_logins[ACTIONS] = "github-actions[bot]"
    fake.add_pull("acme/api", FakePull(number=1, head_sha="head1111"))
    with LoopbackServer(fake) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        yield fake


def _verify(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, token: str):
    monkeypatch.setenv("GITHUB_TOKEN", token)
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, "stepline.github"),
        caplog.at_level(logging.INFO, "stepline.notify"),
    ):
        problems = plugin.verify()
    assert token not in caplog.text and token not in "".join(problems)
    return problems, caplog.text


def test_a_personal_token_is_accepted_with_the_account_it_posts_as(github, monkeypatch, caplog):
    problems, logged = _verify(monkeypatch, caplog, PAT)
    assert problems == []
    assert "GITHUB_TOKEN accepted: GET /user answered 200 (posts as stepline-bot)" in logged
    assert github.calls(r"/rate_limit") == []  # /user said it all


def test_an_actions_token_is_accepted_by_what_it_can_read(github, monkeypatch, caplog):
    problems, logged = _verify(monkeypatch, caplog, ACTIONS)
    assert problems == []
    assert "GET /user answered 403 (Resource not accessible by integration)" in logged
    assert "GET /rate_limit answered 200" in logged
    assert "an installation token (GET /installation/repositories: 1)" in logged
    assert "GraphQL viewer answered 200 (posts as github-actions[bot])" in logged
    assert "WARNING" not in logged


def test_a_used_up_quota_does_not_make_a_token_invalid(github, monkeypatch, caplog):
    github.exhaust_quota(reset_in=600)
    problems, logged = _verify(monkeypatch, caplog, PAT)
    assert problems == []
    assert "GET /user answered 403 (API rate limit exceeded" in logged
    assert "GET /rate_limit answered 200" in logged  # not counted, so answered
    assert "the quota is used up until " in logged
    assert "WARNING" not in logged


def test_only_a_token_github_calls_invalid_is_refused(github, monkeypatch, caplog):
    problems, _ = _verify(monkeypatch, caplog, "ghp_" + "x" * 36)
    assert len(problems) == 1
    assert problems[0].startswith(
        "GitHub rejected GITHUB_TOKEN as invalid (GET /user answered 401 (Bad credentials))"
    )
    assert "--no-verify" in problems[0]


def test_a_token_that_works_but_names_no_account_is_accepted_with_a_warning(
    github, monkeypatch, caplog
):
    error = {"type": "FORBIDDEN", "message": "Resource not accessible by integration"}
    github.inject(r"/graphql", Reply.json({"data": {"viewer": None}, "errors": [error]}))
    problems, logged = _verify(monkeypatch, caplog, ACTIONS)
    assert problems == []
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "reviews will stop until it does" in warned[0]
    assert "GraphQL viewer answered 200 (Resource not accessible by integration)" in warned[0]
    assert "GITHUB_TOKEN accepted: GET /user answered 403" in logged


def test_slack_says_whose_token_it_accepted_and_what_it_could_not_confirm(
    github, monkeypatch, caplog
):
    """verify() asks Slack too: an accepted token is logged with its bot user and team, a
    passing refusal (rate limited) is a warning, not a reason to stop."""
    from tests.fakes.slack_server import FakeSlack

    slack = FakeSlack(token="xoxb-right")
    with LoopbackServer(slack) as server:
        monkeypatch.setenv("SLACK_API_URL", f"{server.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-right")
        problems, logged = _verify(monkeypatch, caplog, PAT)
        assert problems == []
        assert "SLACK_BOT_TOKEN accepted: auth.test answered ok (user stepline in team Fake)" in (
            logged
        )
        slack.inject(r"/api/auth\.test", FakeSlack.rate_limited())
        problems, logged = _verify(monkeypatch, caplog, PAT)
        assert problems == []
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warned == [
            "SLACK_BOT_TOKEN not confirmed: auth.test answered HTTP 429 (ratelimited); "
            "starting anyway"
        ]
        assert "xoxb-right" not in caplog.text
