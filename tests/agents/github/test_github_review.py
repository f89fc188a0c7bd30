"""Whole reviews through real PyGithub against the loopback GitHub (and the loopback OpenAI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import GithubException

from agents.github.client import GithubClients, github_wait
from agents.github.events import ReviewRequest
from agents.github.review import REVIEWED_GROUP, Reviewer, Skipped
from agents.github.settings import GithubEnv, GithubSettings
from agents.llm import LLMClient, LLMRateLimited, LLMSettings
from tests.fakes.common import LoopbackServer
from tests.fakes.github_server import FakeGithub, FakePull, file_entry
from tests.fakes.openai_server import FakeOpenAI

REPO = "acme/api"
AWS_KEY = "AKIA" + "Z7Q2X9LMNP4RT8VW"

SERVICE_PATCH = "\n".join(
    [
        "@@ -1,4 +1,8 @@",
        " import os",
        "+import time",
        " ",
        " def connect():",
        '-    return os.environ["DSN"]',
        '+    dsn = os.environ["DSN"]',
        f'+    key = "{AWS_KEY}"',
        "+    breakpoint()",
        "+    return dsn",
    ]
)

UTIL_PATCH = "@@ -20,2 +20,3 @@ def helper():\n     a = 1\n+    # TODO: cache this\n     return a"


def make_pull(fake: FakeGithub, head: str = "head1111", **kw: object) -> FakePull:
    files = [
        file_entry("src/service.py", SERVICE_PATCH),
        file_entry("poetry.lock", "@@ -1 +1 @@\n-a\n+b"),
        file_entry("src/util.py", UTIL_PATCH),
        file_entry("docs/logo.png", None, "added"),
        file_entry("src/extra.py", "@@ -0,0 +1,2 @@\n+def extra():\n+    return 2", "added"),
    ]
    return fake.add_pull(REPO, FakePull(number=7, head_sha=head, files=files, **kw))  # type: ignore[arg-type]


def review_score(review: dict) -> int:
    return int(review["body"].split("Stepline review: ")[1].split("/")[0])


def request(**kw: object) -> ReviewRequest:
    values: dict[str, object] = {"repo": REPO, "number": 7, "action": "opened", **kw}
    return ReviewRequest(**values)  # type: ignore[arg-type]


def no_llm(settings: GithubSettings | None = None) -> Reviewer:
    return Reviewer(settings or GithubSettings(), None, None)


async def test_rules_review_posts_once_with_valid_inline_positions(
    fake_github, clients, memory_state
):
    fake, _ = fake_github
    make_pull(fake)
    reviewer = Reviewer(GithubSettings(), clients, None)
    done = await reviewer.run(request(), memory_state)
    assert not isinstance(done, Skipped)
    assert len(fake.reviews) == 1 and fake.rejected == []
    review = fake.reviews[0]
    assert review["commit_id"] == "head1111" and review["state"] == "COMMENTED"
    where = {(c["path"], c["line"]) for c in review["comments"]}
    # The secret on new line 6, the breakpoint on line 7, the TODO on util.py line 21.
    assert {("src/service.py", 6), ("src/service.py", 7), ("src/util.py", 21)} <= where
    assert AWS_KEY not in json.dumps(review)
    assert "poetry.lock" in review["body"] and "docs/logo.png" in review["body"]
    # Five files listed two per page: PyGithub followed the Link header to page 3.
    pages = [r.arg("page", "1") for r in fake.calls(r"/repos/acme/api/pulls/7/files")]
    assert pages == ["1", "2", "3"]
    assert done.score < 70 and done.blocking == 1 and done.comments == len(review["comments"])
    assert await memory_state.get(REVIEWED_GROUP, f"{REPO}#7") == "head1111"


async def test_a_retried_event_finds_its_review_instead_of_posting_again(
    fake_github, clients, memory_state
):
    fake, _ = fake_github
    pull = make_pull(fake)
    # Other people's reviews come first, so the marker is found on a later page.
    for i in range(3):
        pull.reviews.append(
            {
                "id": i,
                "body": f"looks fine {i}",
                "state": "COMMENTED",
                "user": {"login": "human"},
                "html_url": "x",
                "commit_id": "head1111",
            }
        )
    reviewer = Reviewer(GithubSettings(), clients, None)
    first = await reviewer.run(request(), memory_state)
    second = await reviewer.run(request(), memory_state)
    assert len(fake.reviews) == 1
    assert not isinstance(first, Skipped) and not isinstance(second, Skipped)
    assert second.already_posted and second.review_id == first.review_id
    assert (second.score, second.comments, second.blocking) == (
        first.score,
        first.comments,
        first.blocking,
    )
    # A /review comment asks for a fresh review of the same head.
    await reviewer.run(request(action="review_command", trigger="comment-9"), memory_state)
    assert len(fake.reviews) == 2


async def test_synchronize_reviews_only_commits_since_the_last_head(
    fake_github, clients, memory_state
):
    fake, _ = fake_github
    make_pull(fake, head="head2222")
    fake.compares[(REPO, "head1111", "head2222")] = [file_entry("src/util.py", UTIL_PATCH)]
    await memory_state.set(REVIEWED_GROUP, f"{REPO}#7", "head1111")
    reviewer = Reviewer(GithubSettings(), clients, None)
    await reviewer.run(request(action="synchronize", before_sha="head1111"), memory_state)
    review = fake.reviews[0]
    assert {c["path"] for c in review["comments"]} == {"src/util.py"}
    assert "since head111" in review["body"]


async def test_llm_comments_are_moved_or_folded_never_rejected(fake_github, clients, memory_state):
    fake, _ = fake_github
    make_pull(fake)
    ai = FakeOpenAI()
    ai.queue_replies(
        json.dumps(
            {
                "summary": "Adds a DSN lookup.",
                "score": 91,
                "comments": [
                    {
                        "path": "src/extra.py",
                        "line": 2,
                        "side": "RIGHT",
                        "severity": "medium",
                        "body": "Return a constant?",
                        "suggestion": "    return EXTRA",
                    },
                    {
                        "path": "src/util.py",
                        "line": 23,
                        "side": "RIGHT",
                        "severity": "low",
                        "body": "Just past the hunk.",
                    },
                    {
                        "path": "src/util.py",
                        "line": 400,
                        "side": "RIGHT",
                        "severity": "low",
                        "body": "Far from any hunk.",
                    },
                    {
                        "path": "src/nowhere.py",
                        "line": 1,
                        "side": "RIGHT",
                        "severity": "high",
                        "body": "Hallucinated file.",
                    },
                ],
            }
        )
    )
    with LoopbackServer(ai) as server:
        llm = LLMClient(
            LLMSettings(api_key=ai.api_key, base_url=f"{server.url}/v1", max_retries=0, timeout=10)
        )
        async with llm:
            done = await Reviewer(GithubSettings(), clients, llm).run(request(), memory_state)
    assert fake.rejected == [] and len(fake.reviews) == 1
    review = fake.reviews[0]
    comments = {(c["path"], c["line"]): c["body"] for c in review["comments"]}
    assert "```suggestion\n    return EXTRA\n```" in comments[("src/extra.py", 2)]
    assert "Just past the hunk" in comments[("src/util.py", 22)]
    assert "Hallucinated" not in json.dumps(review)
    # Far from every hunk of a changed file: a comment on that file, not a line in the summary.
    (on_file,) = fake.review_comments
    assert on_file["path"] == "src/util.py" and on_file["subject_type"] == "file"
    assert "Far from any hunk" in on_file["body"] and on_file["commit_id"] == "head1111"
    # The AI said 91, but the built-in checks found a secret: their verdict caps the score.
    assert not isinstance(done, Skipped) and done.score == review_score(review) < 91
    prompt = json.dumps(ai.completion_requests())
    assert (
        AWS_KEY not in prompt
        and "[REDACTED]" in prompt
        and "poetry.lock" not in prompt.split("Diff:")[-1]
    )


async def test_llm_failure_falls_back_to_the_rules(fake_github, clients, memory_state):
    fake, _ = fake_github
    make_pull(fake)
    ai = FakeOpenAI()
    ai.inject(r"/v1/chat/completions", FakeOpenAI.server_error())
    with LoopbackServer(ai) as server:
        llm = LLMClient(
            LLMSettings(api_key=ai.api_key, base_url=f"{server.url}/v1", max_retries=0, timeout=10)
        )
        async with llm:
            done = await Reviewer(GithubSettings(), clients, llm).run(request(), memory_state)
    assert not isinstance(done, Skipped) and "rules" in done.reviewer
    assert "AI review unavailable" in fake.reviews[0]["body"]


async def test_an_llm_429_with_retry_after_reschedules_instead_of_a_rules_review(
    fake_github, clients, memory_state
):
    fake, _ = fake_github
    make_pull(fake)
    ai = FakeOpenAI()
    ai.inject(r"/v1/chat/completions", FakeOpenAI.rate_limited(retry_after="20"))
    with LoopbackServer(ai) as server:
        llm = LLMClient(LLMSettings(api_key=ai.api_key, base_url=f"{server.url}/v1", timeout=10))
        async with llm:
            with pytest.raises(LLMRateLimited) as err:
                await Reviewer(GithubSettings(), clients, llm).run(request(), memory_state)
    assert err.value.delay == 20 and fake.reviews == []  # no rules-only review in its place


async def test_closed_and_draft_pull_requests_are_skipped(fake_github, clients):
    fake, _ = fake_github
    make_pull(fake, draft=True)
    assert isinstance(await Reviewer(GithubSettings(), clients, None).run(request()), Skipped)
    make_pull(fake, state="closed")
    assert isinstance(await Reviewer(GithubSettings(), clients, None).run(request()), Skipped)
    assert fake.reviews == []


@pytest.mark.parametrize("status", [403, 429])
async def test_a_secondary_limit_fails_the_run_with_githubs_wait(fake_github, clients, status):
    fake, _ = fake_github
    make_pull(fake)
    fake.secondary_rate_limit(r"/repos/acme/api/pulls/7", status=status, retry_after=0)
    with pytest.raises(GithubException) as err:
        await Reviewer(GithubSettings(), clients, None).run(request())
    assert github_wait(err.value) == 0 and fake.reviews == []
    await Reviewer(GithubSettings(), clients, None).run(request())  # the run, again
    assert len(fake.reviews) == 1


async def test_a_long_rate_limit_fails_the_attempt_instead_of_sleeping(fake_github, clients):
    fake, _ = fake_github
    make_pull(fake)
    fake.secondary_rate_limit(r"/repos/acme/api/pulls/7", status=429, retry_after=3600, times=5)
    with pytest.raises(GithubException) as err:
        await Reviewer(GithubSettings(), clients, None).run(request())
    assert err.value.status == 429 and fake.reviews == []
    # No sleep at all: an hour-long wait fails the attempt at once (the engine retries later).
    assert len(fake.calls(r"/repos/acme/api/pulls/7", "GET")) == 1


def test_fake_refuses_comments_outside_the_diff_like_github(fake_github, clients):
    fake, _ = fake_github
    make_pull(fake)
    pull = clients.for_installation().get_repo(REPO).get_pull(7)
    with pytest.raises(GithubException) as err:
        pull.create_review(
            body="x",
            event="COMMENT",
            comments=[{"path": "src/util.py", "line": 40, "side": "RIGHT", "body": "nope"}],
        )
    assert err.value.status == 422 and fake.reviews == []


async def test_github_app_installation_token(fake_github, clients, tmp_path: Path, memory_state):
    fake, url = fake_github
    make_pull(fake)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "app.pem").write_bytes(pem)
    fake.app_keys["4242"] = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env = GithubEnv(
        app_id="4242", app_private_key_file=tmp_path / "app.pem", api_url=url, _env_file=None
    )
    app_clients = GithubClients(env, clients.api)
    try:
        await Reviewer(GithubSettings(), app_clients, None).run(
            request(installation_id=99), memory_state
        )
    finally:
        app_clients.close()
    assert len(fake.reviews) == 1
    assert [inst for inst, _ in fake.tokens_issued] == [99]
