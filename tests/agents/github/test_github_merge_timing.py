"""Auto-merge on GitHub's timing, through the runtime: CI that finishes after the review,
`mergeable: null` right after a push, labels and statuses that arrive later, forks."""

from __future__ import annotations

import json

import pytest
from gh_merge_payloads import check_run, check_suite, labeled, review_submitted, status
from gh_payloads import pull_request
from test_github_flow import CONFIG, deliver
from test_github_flow import flow as flow_fixture  # noqa: F401  (the `flow` fixture)

from agents.github.events import TOPIC_MERGE_CHECK, TOPIC_MERGED
from agents.github.settings import GithubSettings
from agents.github.webhook import decide
from tests.fakes.github_server import FakePull, file_entry

CLEAN = "@@ -1,1 +1,2 @@\n x = 1\n+y = 2"
# Mergeability is read again after 50 ms, then 100, 200...: the delayed emits of a real run.
MERGE_ON = (
    CONFIG.replace("max_retry_wait: 0.2}", "max_retry_wait: 0.2, mergeable_wait: 0.05}")
    + "merge:\n  acme/api: {enabled: true}\n"
)


@pytest.fixture
def merge_flow(request, tmp_path):
    """The GitHub flow of test_github_flow, with auto-merge on for acme/api."""
    flow = request.getfixturevalue("flow_fixture")
    (tmp_path / "github.yaml").write_text(MERGE_ON)
    return flow


def add_pr(github, number: int = 8, head: str = "head8888", **kw) -> FakePull:
    files = [file_entry("src/calc.py", CLEAN), file_entry("tests/test_calc.py", CLEAN)]
    values = {"labels": ["automerge"], "files": files, **kw}
    return github.add_pull("acme/api", FakePull(number=number, head_sha=head, **values))


async def logged(h, message: str) -> list[dict]:
    return [e.fields for e in await h.logs() if e.message == message]


async def test_ci_finishing_after_the_review_merges_once(merge_flow, tmp_path):
    h, github, slack = merge_flow
    add_pr(github)
    github.add_check("head8888", "tests")
    github.add_check("head8888", "lint")
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-1")
    await h.drain(timeout=20)
    [refused] = await logged(h, "merge refused")
    assert "is in_progress" in refused["reason"] and refused["cause"] == "review posted"
    assert github.merges == []
    # One check finishes: the gate is looked at again and still waits for the other.
    github.finish_check("head8888", "tests")
    await deliver(h, "check_run", check_run("tests", (8,), head="head8888"), "d-2")
    await h.drain(timeout=20)
    assert (
        github.merges == []
        and "'lint' is in_progress" in (await logged(h, "merge refused"))[-1]["reason"]
    )
    github.finish_check("head8888", "lint")
    await deliver(h, "check_run", check_run("lint", (8,), head="head8888"), "d-3")
    await deliver(h, "check_suite", check_suite((8,), head="head8888"), "d-4")
    await h.drain(timeout=20)
    assert github.merges == [
        {"repo": "acme/api", "number": 8, "merge_method": "squash", "sha": "head8888"}
    ]
    assert len(github.calls(r"/repos/acme/api/pulls/8/merge", "PUT")) == 1
    [merged] = await logged(h, "merged")
    assert merged["cause"] == "check_run 'lint' completed (success)"
    # Announced once, though two deliveries re-checked the merged pull request.
    said = [json.dumps(m) for m in slack.posted()]
    assert sum("merged" in t.lower() and "acme/api#8" in t for t in said) == 1


async def test_ci_finishing_before_the_review_merges_when_the_review_lands(merge_flow):
    h, github, _ = merge_flow
    add_pr(github)
    github.check_runs["head8888"] = [
        {"id": 1, "name": "ci", "status": "completed", "conclusion": "success"}
    ]
    await deliver(h, "check_suite", check_suite((8,), head="head8888"), "d-1")
    await h.drain(timeout=20)
    assert github.merges == [] and github.calls(r".*/merge") == []
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-2")
    await h.drain(timeout=20)
    assert len(github.merges) == 1
    assert (await logged(h, "merged"))[0]["cause"] == "review posted"


async def test_mergeable_null_is_read_again_after_a_delay(merge_flow, tmp_path):
    h, github, _ = merge_flow
    # The review's read, the merge step's and the first re-check's all see null.
    add_pr(github, unknown_reads=3)
    github.check_runs["head8888"] = [
        {"id": 1, "name": "ci", "status": "completed", "conclusion": "success"}
    ]
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-1")
    await h.drain(timeout=30)
    assert len(github.merges) == 1
    # The re-check read null once more and scheduled another read (a delayed emit to itself,
    # not a failed attempt), which merged.
    rechecks = await h.spans(step="RecheckMerge")
    assert [(s.attempt, s.status, s.emitted) for s in rechecks] == [
        (1, "ok", [TOPIC_MERGE_CHECK]),
        (1, "ok", [TOPIC_MERGED]),
    ]
    [merged] = await logged(h, "merged")
    assert merged["cause"] == "mergeability was being computed"
    assert await h.dead_letters() == []


async def test_mergeable_that_never_settles_stops_after_bounded_attempts(merge_flow, tmp_path):
    h, github, _ = merge_flow
    add_pr(github, mergeable=None)
    github.check_runs["head8888"] = [
        {"id": 1, "name": "ci", "status": "completed", "conclusion": "success"}
    ]
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-1")
    await h.drain(timeout=30)
    assert github.merges == [] and await h.dead_letters() == []
    assert len(await h.spans(step="RecheckMerge")) == 6
    assert await logged(
        h, "stopped waiting for GitHub's mergeability; the next check or label delivery looks again"
    )


async def test_label_added_later_and_status_by_sha(merge_flow, tmp_path):
    h, github, _ = merge_flow
    pr = add_pr(github, labels=[])
    github.statuses["head8888"] = [{"state": "pending", "context": "ci/jenkins"}]
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-1")
    await h.drain(timeout=20)
    assert "label 'automerge' is missing" in (await logged(h, "merge refused"))[0]["reason"]
    pr.labels = ["automerge"]
    await deliver(h, "pull_request", labeled("automerge", number=8), "d-2")
    await h.drain(timeout=20)
    assert "status is pending" in (await logged(h, "merge refused"))[-1]["reason"]
    # A status names a commit, not a pull request: the pull requests are found by its sha.
    github.statuses["head8888"] = [{"state": "success", "context": "ci/jenkins"}]
    await deliver(h, "status", status("success", sha="head8888"), "d-3")
    await h.drain(timeout=20)
    assert len(github.merges) == 1
    assert github.calls(r"/repos/acme/api/commits/head8888/pulls", "GET")


async def test_fork_pull_requests_need_allow_forks(merge_flow, tmp_path):
    h, github, _ = merge_flow
    add_pr(github, head_repo="contributor/api")
    github.add_check("head8888", "ci")
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-1")
    await h.drain(timeout=20)
    github.finish_check("head8888", "ci")
    # GitHub lists no pull requests in a check suite of a fork's branch.
    await deliver(h, "check_suite", check_suite((), head="head8888"), "d-2")
    await h.drain(timeout=20)
    assert github.merges == []
    assert "from a fork" in (await logged(h, "merge refused"))[-1]["reason"]
    (tmp_path / "github.yaml").write_text(
        CONFIG + "merge:\n  acme/api: {enabled: true, allow_forks: true}\n"
    )
    # Even where GitHub's commit lookup leaves the fork's pull request out, it is found among
    # the open pull requests by its head.
    github.commit_pulls_lists_forks = False
    await deliver(h, "check_suite", check_suite((), head="head8888"), "d-3")
    await h.drain(timeout=20)
    assert len(github.merges) == 1
    assert github.calls(r"/repos/acme/api/pulls", "GET")


async def test_github_auto_merge_armed_then_disarmed_by_a_push(merge_flow, tmp_path):
    h, github, _ = merge_flow
    (tmp_path / "github.yaml").write_text(
        CONFIG + "merge:\n  acme/api: {enabled: true, github_auto_merge: true}\n"
    )
    pr = add_pr(github)
    github.allow_auto_merge["acme/api"] = True
    github.required_checks["acme/api"] = ["tests"]
    github.add_check("head8888", "tests")
    await deliver(h, "pull_request", pull_request("opened", number=8, head="head8888"), "d-1")
    await h.drain(timeout=20)
    assert pr.auto_merge is not None and pr.auto_merge["expected_head"] == "head8888"
    assert (await logged(h, "auto-merge armed on GitHub"))[0]["cause"] == "review posted"
    # A push before CI finishes: the new commits are unreviewed, so GitHub must not merge them.
    github.push("acme/api", 8, "head9999")
    github.add_check("head9999", "tests")
    push = pull_request("synchronize", number=8, head="head9999", before="head8888")
    await deliver(h, "pull_request", push, "d-2")
    await h.drain(timeout=20)
    # Whichever runs first, the push's re-check or the new review's attempt: the arm pinned to
    # the old head is taken back once, and the new head's review arms it again.
    disarms = [c for c in github.graphql_calls if c["mutation"] == "disablePullRequestAutoMerge"]
    assert len(disarms) == 1 and pr.auto_merge["expected_head"] == "head9999"
    github.finish_check("head8888", "tests")
    assert github.merges == []
    github.finish_check("head9999", "tests")
    assert github.merges == [
        {"repo": "acme/api", "number": 8, "merge_method": "squash", "by": "auto-merge"}
    ]


def test_deliveries_are_routed_only_when_something_waits_for_them():
    off = GithubSettings()
    on = GithubSettings.model_validate({"merge": {"acme/api": {"enabled": True}}})
    waiting = [
        ("check_suite", check_suite((7,))),
        ("check_run", check_run()),
        ("status", status("success")),
        ("pull_request", labeled("automerge")),
        ("pull_request_review", review_submitted("approved")),
    ]
    for event, payload in waiting:
        assert decide(event, payload, off).emits == [], event
        decision = decide(event, payload, on)
        assert [t for t, _ in decision.emits] == [TOPIC_MERGE_CHECK], (event, decision.reason)
    checked = decide("check_suite", check_suite((7, 9)), on).emits[0][1]
    assert checked["numbers"] == [7, 9] and checked["head_sha"] == "head1111"
    # The same commit can head a pull request into another repository: not ours to re-check.
    mixed = check_suite((7,), elsewhere=((3, "upstream/api"),))
    assert decide("check_suite", mixed, on).emits[0][1]["numbers"] == [7]
    by_sha = decide("status", status("success", sha="abc123"), on).emits[0][1]
    assert by_sha["numbers"] == [] and by_sha["head_sha"] == "abc123"
    for event, payload in [
        ("check_suite", check_suite(conclusion="failure")),
        ("check_suite", check_suite(action="requested", conclusion=None)),
        ("check_run", check_run(conclusion="cancelled")),
        ("status", status("pending")),
        ("status", status("failure")),
        ("pull_request", labeled("bug")),
        ("pull_request", labeled("automerge", action="unlabeled")),
        ("pull_request_review", review_submitted("commented")),
        ("pull_request_review", review_submitted("changes_requested")),
    ]:
        decision = decide(event, payload, on)
        assert decision.status == 202 and decision.emits == [], (event, decision.reason)


def test_with_github_auto_merge_a_push_or_a_removed_label_re_checks_to_disarm():
    arming = GithubSettings.model_validate(
        {"merge": {"acme/api": {"enabled": True, "github_auto_merge": True}}}
    )
    push = decide("pull_request", pull_request("synchronize", before="old0000"), arming)
    assert [t for t, _ in push.emits][-1] == TOPIC_MERGE_CHECK
    assert (
        push.emits[-1][1]["numbers"] == [7] and push.emits[-1][1]["cause"] == "new commits pushed"
    )
    removed = decide("pull_request", labeled("automerge", action="unlabeled"), arming)
    assert [t for t, _ in removed.emits] == [TOPIC_MERGE_CHECK]
    # Without GitHub's auto-merge nothing is armed, so a push needs only its new review.
    plain = GithubSettings.model_validate({"merge": {"acme/api": {"enabled": True}}})
    push = decide("pull_request", pull_request("synchronize", before="old0000"), plain)
    assert TOPIC_MERGE_CHECK not in [t for t, _ in push.emits]


@pytest.mark.parametrize("event", ["check_suite", "check_run", "status", "pull_request_review"])
def test_malformed_merge_deliveries_are_400_not_500(event):
    on = GithubSettings.model_validate({"merge": {"default": {"enabled": True}}})
    body = {"action": "completed" if event.startswith("check") else "submitted"}
    body["repository"] = {"full_name": "acme/api"}
    body["state"] = "success"
    assert decide(event, body, on).status == 400
