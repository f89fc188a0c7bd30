"""End to end through the runtime: signed webhooks in, a review on GitHub and Slack messages out."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gh_payloads import SECRET, body, headers, issue_comment, ping, pull_request

from agents.github import services
from agents.github.report import REPORT_GROUP
from app.settings import Mode
from app.testing import Harness
from tests.agents.leaks import assert_no_secrets
from tests.fakes.common import LoopbackServer
from tests.fakes.github_server import FakeGithub, FakePull, file_entry
from tests.fakes.slack_server import FakeSlack

GITHUB_TOKEN = "test-token"  # the one FakeGithub accepts
ROOT = Path(__file__).resolve().parents[3]
STEPS = [ROOT / "steps" / "github", ROOT / "steps" / "notify"]
PATCH = "@@ -1,2 +1,4 @@\n import os\n+# FIXME: retry on timeout\n+import pdb\n x = 1"
CONFIG = """
slack:
  opened: false
  channels: {acme/api: "#alerts"}
api: {max_retry_wait: 0.2}
review: {debounce_seconds: 0}  # reviews at once; the debounce test sets its own
"""

_ENV = (
    "GITHUB_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY_FILE",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_API_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_API_URL",
    "SLACK_DEFAULT_CHANNEL",
    "NTFY_TOPIC",
    "PUSHOVER_TOKEN",
    "PUSH_WEBHOOK_URL",
)


@pytest.fixture
async def flow(monkeypatch, tmp_path) -> AsyncIterator[tuple[Harness, FakeGithub, FakeSlack]]:
    async with start_flow(monkeypatch, tmp_path, CONFIG) as started:
        yield started


@asynccontextmanager
async def start_flow(
    monkeypatch, tmp_path, config: str, clock: Callable[[], float] | None = None
) -> AsyncIterator[tuple[Harness, FakeGithub, FakeSlack]]:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    github, slack = FakeGithub(), FakeSlack()
    github.add_pull(
        "acme/api", FakePull(number=7, head_sha="head1111", files=[file_entry("src/app.py", PATCH)])
    )
    (tmp_path / "github.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(tmp_path))
    with LoopbackServer(github) as gh_server, LoopbackServer(slack) as slack_server:
        monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", gh_server.url)
        monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
        monkeypatch.setenv("SLACK_API_URL", f"{slack_server.url}/api/")
        services.reset()
        async with Harness(steps=STEPS, db=tmp_path / "t.db", clock=clock) as h:
            yield h, github, slack
        services.reset()


def secrets(slack: FakeSlack) -> dict[str, str]:
    return {"GITHUB_TOKEN": GITHUB_TOKEN, "webhook secret": SECRET, "Slack token": slack.token}


async def deliver(h: Harness, event: str, payload: dict, delivery: str = "d-1", **kw):
    raw = body(payload)
    return await h.post(
        "/webhooks/github", content=raw, headers=headers(event, raw, delivery, **kw)
    )


async def test_signed_opened_webhook_ends_in_one_review_and_one_slack_message(flow):
    h, github, slack = flow
    response = await deliver(h, "pull_request", pull_request("opened"))
    assert response.status_code == 202
    await h.drain(timeout=20)
    assert len(github.reviews) == 1 and github.rejected == []
    review = github.reviews[0]
    assert {(c["path"], c["line"], c["side"]) for c in review["comments"]} == {
        ("src/app.py", 2, "RIGHT"),
        ("src/app.py", 3, "RIGHT"),
    }
    messages = slack.posted()
    assert len(messages) == 1 and messages[0]["channel"] == "C0ALERTS"
    assert "acme/api#7" in json.dumps(messages[0])
    assert len(h.emitted("github.pr.opened")) == 1
    completed = h.emitted("github.review.completed")
    assert len(completed) == 1 and completed[0].data["comments"] == len(review["comments"]) == 3

    # GitHub redelivers the same delivery: nothing new happens.
    assert (await deliver(h, "pull_request", pull_request("opened"))).status_code == 202
    await h.drain(timeout=20)
    assert len(github.reviews) == 1 and len(slack.posted()) == 1

    # The merge is announced in the pull request's thread.
    merged = pull_request("closed", merged=True)
    assert (await deliver(h, "pull_request", merged, delivery="d-2")).status_code == 202
    await h.drain(timeout=20)
    follow_up = slack.posted()[-1]
    assert len(slack.posted()) == 2 and follow_up["thread_ts"] == messages[0]["ts"]
    await assert_no_secrets(h, secrets(slack))


async def test_bad_or_missing_signature_is_401_and_nothing_runs(flow):
    h, github, slack = flow
    raw = body(pull_request("opened"))
    wrong = headers("pull_request", raw, secret="not the secret")
    missing = headers("pull_request", raw, secret=None)
    for hdrs in (wrong, missing):
        response = await h.post("/webhooks/github", content=raw, headers=hdrs)
        assert response.status_code == 401 and "X-Hub-Signature-256" in response.text
    await h.drain(timeout=10)
    assert h.emitted() == [] and github.requests == [] and slack.posted() == []


async def test_ping_ignored_events_and_junk_never_500(flow):
    h, _, _ = flow
    assert (await deliver(h, "ping", ping())).status_code == 200
    assert (await deliver(h, "push", {"ref": "refs/heads/main"}, "d-3")).status_code == 202
    draft = pull_request("opened", draft=True)
    assert (await deliver(h, "pull_request", draft, "d-4")).status_code == 202
    raw = b"{not json"
    junk = await h.post("/webhooks/github", content=raw, headers=headers("pull_request", raw))
    assert junk.status_code == 400
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for raw in (
        urllib.parse.urlencode({"payload": "{not json"}).encode(),
        urllib.parse.urlencode({"no_payload": "1"}).encode(),
        b"%ZZ&&==\xff\xfe",
    ):
        junk = await h.post(
            "/webhooks/github", content=raw, headers={**headers("pull_request", raw), **form}
        )
        assert junk.status_code == 400, raw
    raw = b"[" * 200_000  # deeper than any JSON parser recurses
    nested = await h.post("/webhooks/github", content=raw, headers=headers("pull_request", raw))
    assert nested.status_code < 500
    await h.drain(timeout=10)
    assert h.emitted("github.review.requested") == []


async def test_auto_merge_when_enabled_and_one_merged_message(flow, tmp_path):
    h, github, slack = flow
    clean = "@@ -1,1 +1,2 @@\n x = 1\n+y = 2"
    github.add_pull(
        "acme/api",
        FakePull(
            number=8,
            head_sha="head8888",
            labels=["automerge"],
            files=[file_entry("src/calc.py", clean), file_entry("tests/test_calc.py", clean)],
        ),
    )
    github.check_runs["head8888"] = [
        {"id": 1, "name": "ci", "status": "completed", "conclusion": "success"}
    ]
    (tmp_path / "github.yaml").write_text(CONFIG + "merge:\n  acme/api: {enabled: true}\n")
    opened = pull_request("opened", number=8, head="head8888")
    assert (await deliver(h, "pull_request", opened, "d-8")).status_code == 202
    await h.drain(timeout=20)
    assert github.merges == [
        {"repo": "acme/api", "number": 8, "merge_method": "squash", "sha": "head8888"}
    ]
    # GitHub then sends its own "closed, merged" webhook: still one merged message.
    closed = pull_request("closed", number=8, head="head8888", merged=True)
    await deliver(h, "pull_request", closed, "d-9")
    await h.drain(timeout=20)
    titles = [json.dumps(m) for m in slack.posted()]
    assert sum("merged" in t.lower() and "acme/api#8" in t for t in titles) == 1
    assert len(h.emitted("github.pr.merged")) == 2


async def test_daily_report_cron_posts_and_emits(flow, monkeypatch):
    h, _, slack = flow
    monkeypatch.setenv("SLACK_DEFAULT_CHANNEL", "#alerts")
    # A day of activity: opened, reviewed (by the flow itself), merged, then a redelivery.
    await deliver(h, "pull_request", pull_request("opened"), "d-1")
    await h.drain(timeout=20)
    await deliver(h, "pull_request", pull_request("closed", merged=True), "d-2")
    await deliver(h, "pull_request", pull_request("closed", merged=True), "d-3")
    await h.drain(timeout=20)
    score = h.emitted("github.review.completed")[0].data["score"]
    # The report covers yesterday, so the figures recorded today are moved back one day.
    now = datetime.now(UTC).date()  # report.timezone defaults to UTC
    today, yesterday = now.isoformat(), (now - timedelta(days=1)).isoformat()
    records = await h.state.list(REPORT_GROUP)
    assert list(records) == [f"{today}|acme/api"]
    await h.state.set(REPORT_GROUP, f"{yesterday}|acme/api", records[f"{today}|acme/api"])
    await h.state.delete(REPORT_GROUP, f"{today}|acme/api")
    posted_before = len(slack.posted())
    await h.run_cron("GithubDailyReport")
    await h.drain(timeout=10)
    reports = h.emitted("github.report.generated")
    assert len(reports) == 1 and reports[0].data["day"] == yesterday
    assert reports[0].data["repos"] == {
        "acme/api": {"opened": 1, "reviews": 1, "average_score": score, "merged": 1}
    }
    posted = json.dumps(slack.posted()[posted_before:])
    assert f"Pull requests on {yesterday}" in posted
    assert f"acme/api: 1 opened, 1 reviewed (average score {score:.0f}), 1 merged" in posted
    await assert_no_secrets(h, secrets(slack))


async def test_review_command_and_unsigned_dev_mode(flow, monkeypatch):
    h, github, _ = flow
    comment = issue_comment("/review", association="COLLABORATOR")
    assert (await deliver(h, "issue_comment", comment, "d-10")).status_code == 202
    outsider = issue_comment("/review", association="NONE", comment_id=556)
    assert (await deliver(h, "issue_comment", outsider, "d-11")).status_code == 202
    await h.drain(timeout=20)
    assert len(github.reviews) == 1 and "trigger=comment-555" in github.reviews[0]["body"]
    # Without a secret (only `stepline dev` starts that way) unsigned deliveries are accepted.
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    raw = body(ping())
    unsigned = await h.post(
        "/webhooks/github", content=raw, headers=headers("ping", raw, "d-12", secret=None)
    )
    assert unsigned.status_code == 200
    # Under `stepline start` (or server, worker) the same delivery is refused and runs nothing.
    h.settings.mode = Mode.START
    opened = body(pull_request("opened", number=9))
    refused = await h.post(
        "/webhooks/github", content=opened, headers=headers("pull_request", opened, "d-13", None)
    )
    assert refused.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in refused.text
    await h.drain(timeout=10)
    assert [m.data["number"] for m in h.emitted("github.review.requested")] == [7]


async def test_three_quick_pushes_get_one_review_of_the_last_head(monkeypatch, tmp_path):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()]
    config = CONFIG.replace("debounce_seconds: 0", "debounce_seconds: 30")
    async with start_flow(monkeypatch, tmp_path, config, clock=lambda: now[0]) as started:
        h, github, _ = started
        pull = github.pulls[("acme/api", 7)]
        heads = ["head1111", "head2222", "head3333"]
        for n, head in enumerate(heads):  # a push every 5 s: never 30 s of quiet
            pull.head_sha = head
            action = "opened" if n == 0 else "synchronize"
            payload = pull_request(action, head=head, before=heads[n - 1] if n else None)
            response = await deliver(h, "pull_request", payload, delivery=f"d-{n}")
            assert response.status_code == 202
            now[0] += 5
        # One review waits for the pushes to stop, holding the newest head.
        events = (await h.get("/_stepline/events")).json()["queued"]
        waiting = [q for q in events if q["status"] == "scheduled"]
        assert {q["step"] for q in waiting} == {"ReviewPullRequest"}
        assert [q["data"]["head_sha"] for q in waiting] == ["head3333"]
        assert github.reviews == []
        now[0] += 30
        await h.drain(timeout=20)
        assert [r["commit_id"] for r in github.reviews] == ["head3333"]
        assert [m.data["head_sha"] for m in h.emitted("github.review.completed")] == ["head3333"]


async def test_a_secondary_rate_limit_on_the_review_post_reschedules_it(monkeypatch, tmp_path):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()]
    async with start_flow(monkeypatch, tmp_path, CONFIG, clock=lambda: now[0]) as started:
        h, github, _ = started
        reviews = r"/repos/acme/api/pulls/7/reviews"
        github.secondary_rate_limit(reviews, status=403, retry_after=120, method="POST")
        assert (await deliver(h, "pull_request", pull_request("opened"))).status_code == 202

        async def waiting() -> list[dict]:
            await h.runtime.writer.flush()
            h.runtime.engine.wake(None)
            events = (await h.get("/_stepline/events")).json()["queued"]
            return [q for q in events if q["status"] == "scheduled"]

        deadline = asyncio.get_running_loop().time() + 20
        while not (later := await waiting()):
            assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the retry"
            await asyncio.sleep(0.02)
        # Re-scheduled after GitHub's Retry-After by the runtime, not slept in the handler.
        assert [(q["step"], q["due"]) for q in later] == [("ReviewPullRequest", now[0] + 120)]
        assert github.reviews == [] and len(github.calls(reviews, "POST")) == 1
        now[0] += 121
        await h.drain(timeout=20)
        assert len(github.reviews) == 1
        assert [d for d in await h.dead_letters() if d.step == "ReviewPullRequest"] == []
        # The wait spent no attempt: the post that succeeded was the first attempt's rerun.
        spans = [s for s in await h.spans(step="ReviewPullRequest") if s.status == "ok"]
        assert [s.attempt for s in spans] == [1]
