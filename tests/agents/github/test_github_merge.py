"""The merge policy against the loopback GitHub: every gate refuses on its own, one merge."""

from __future__ import annotations

import threading

import pytest
from github import GithubException
from pydantic import ValidationError

from agents.github.events import ReviewCompleted
from agents.github.merge import merge_if_allowed
from agents.github.settings import GithubSettings, MergePolicy
from tests.fakes.common import Reply
from tests.fakes.github_server import FakePull, file_entry

REPO = "acme/api"
POLICY = MergePolicy(enabled=True, min_score=80, required_label="automerge", method="squash")
ARMING = POLICY.model_copy(update={"github_auto_merge": True})


def setup(fake, runs: str = "passed", **kw) -> FakePull:
    values = {
        "number": 7,
        "head_sha": "head1111",
        "labels": ["automerge"],
        "files": [file_entry("a.py", "@@ -1 +1 @@\n-a\n+b")],
        "unknown_reads": 0,  # GitHub has finished computing mergeability
        **kw,
    }
    if runs == "passed":
        fake.check_runs["head1111"] = [
            {"id": 1, "name": "tests", "status": "completed", "conclusion": "success"},
            {"id": 2, "name": "lint", "status": "completed", "conclusion": "skipped"},
        ]
    elif runs == "running":
        fake.add_check("head1111", "tests")
    return fake.add_pull(REPO, FakePull(**values))


def reviewed(score: int = 92, **kw) -> ReviewCompleted:
    return ReviewCompleted(repo=REPO, number=7, head_sha="head1111", score=score, comments=0, **kw)


def merge_puts(fake) -> list:
    return fake.calls(r"/repos/acme/api/pulls/7/merge", "PUT")


def test_merges_when_every_gate_is_open(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    outcome = merge_if_allowed(clients, POLICY, reviewed())
    assert outcome.merged, outcome.reason
    assert fake.merges == [{"repo": REPO, "number": 7, "merge_method": "squash", "sha": "head1111"}]
    # A re-run (at-least-once delivery) reports the merge without merging again.
    again = merge_if_allowed(clients, POLICY, reviewed())
    assert again.merged and again.reason == "already merged" and len(merge_puts(fake)) == 1


def test_first_read_after_a_push_is_null_and_asks_to_read_again(fake_github, clients):
    fake, _ = fake_github
    setup(fake, unknown_reads=1)  # as GitHub answers right after a push
    first = merge_if_allowed(clients, POLICY, reviewed())
    assert not first.merged and first.pending and "not computed" in first.reason
    assert merge_puts(fake) == []
    second = merge_if_allowed(clients, POLICY, reviewed())
    assert second.merged and not second.pending


@pytest.mark.parametrize(
    ("change", "review", "reason"),
    [
        ({}, reviewed(score=79), "below min_score 80"),
        ({}, reviewed(blocking=1), "blocking"),
        ({"labels": []}, reviewed(), "label 'automerge' is missing"),
        ({"mergeable": False}, reviewed(), "not mergeable"),
        ({"mergeable": None}, reviewed(), "not computed"),
        ({"head_sha": "head2222"}, reviewed(), "new commits"),
        ({"state": "closed"}, reviewed(), "closed"),
        ({"head_repo": "mallory/api"}, reviewed(), "from a fork"),
    ],
)
def test_each_gate_refuses_with_its_reason(fake_github, clients, change, review, reason):
    fake, _ = fake_github
    setup(fake, **change)
    outcome = merge_if_allowed(clients, POLICY, review)
    assert not outcome.merged and reason in outcome.reason
    assert fake.merges == [] and merge_puts(fake) == []


def test_forks_and_authors_follow_the_policy(fake_github, clients):
    fake, _ = fake_github
    setup(fake, head_repo="contributor/api", author="contributor")
    forks = POLICY.model_copy(update={"allow_forks": True, "authors": ["octocat"]})
    refused = merge_if_allowed(clients, forks, reviewed())
    assert not refused.merged and "'contributor' is not in the policy's authors" in refused.reason
    listed = forks.model_copy(update={"authors": ["Contributor"]})
    assert merge_if_allowed(clients, listed, reviewed()).merged


def test_failed_pending_or_missing_checks_refuse(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    fake.check_runs["head1111"][0]["conclusion"] = "failure"
    assert "'tests' concluded failure" in merge_if_allowed(clients, POLICY, reviewed()).reason
    fake.check_runs["head1111"][0].update(status="in_progress", conclusion=None)
    assert "'tests' is in_progress" in merge_if_allowed(clients, POLICY, reviewed()).reason
    fake.check_runs["head1111"] = []
    fake.statuses["head1111"] = [{"state": "pending", "context": "ci/legacy"}]
    assert "status is pending" in merge_if_allowed(clients, POLICY, reviewed()).reason
    fake.statuses["head1111"] = []
    # A repository with no CI at all is not "checks passed".
    assert "no checks ran" in merge_if_allowed(clients, POLICY, reviewed()).reason
    assert fake.merges == []
    no_ci = POLICY.model_copy(update={"allow_no_checks": True})
    assert merge_if_allowed(clients, no_ci, reviewed()).merged


def test_github_refusals_are_refusals_not_crashes(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    fake.inject(
        r"/repos/acme/api/pulls/7/merge",
        Reply.json({"message": "Pull Request is not mergeable"}, 405),
        method="PUT",
    )
    outcome = merge_if_allowed(clients, POLICY, reviewed())
    assert not outcome.merged and "405" in outcome.reason and "not mergeable" in outcome.reason
    # Branch protection that our policy does not know about: GitHub's own 405 says why.
    fake.required_checks[REPO] = ["deploy-preview"]
    outcome = merge_if_allowed(clients, POLICY, reviewed())
    assert not outcome.merged and 'Required status check "deploy-preview"' in outcome.reason
    assert fake.merges == []


def test_the_fake_merge_endpoint_follows_the_documented_statuses(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    pull = clients.for_installation().get_repo(REPO).get_pull(7)
    with pytest.raises(GithubException) as stale:
        pull.merge(merge_method="squash", sha="not-the-head")
    assert stale.value.status == 409
    fake.allowed_methods[REPO] = ("merge",)
    with pytest.raises(GithubException) as method:
        pull.merge(merge_method="squash", sha="head1111")
    assert method.value.status == 405 and "Squash merges are not allowed" in str(method.value)
    assert pull.merge(merge_method="merge", sha="head1111").merged
    with pytest.raises(GithubException) as merged:
        pull.merge(merge_method="merge", sha="head1111")
    assert merged.value.status == 405 and len(fake.merges) == 1


def test_concurrent_attempts_merge_exactly_once(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(merge_if_allowed(clients, POLICY, reviewed()))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 3 and all(o.merged for o in outcomes), outcomes
    assert len(fake.merges) == 1
    assert sorted(o.reason for o in outcomes).count("already merged") >= 1


def test_github_auto_merge_is_armed_while_required_checks_run(fake_github, clients):
    fake, _ = fake_github
    setup(fake, runs="running")
    fake.allow_auto_merge[REPO] = True
    fake.required_checks[REPO] = ["tests"]
    armed = merge_if_allowed(clients, ARMING, reviewed())
    assert not armed.merged and armed.armed and "'tests' is in_progress" in armed.reason
    [call] = fake.graphql_calls
    assert call["mutation"] == "enablePullRequestAutoMerge"
    assert (
        call["input"]["mergeMethod"] == "SQUASH" and call["input"]["expectedHeadOid"] == "head1111"
    )
    # A re-check while armed leaves the merge to GitHub: no PUT from us.
    again = merge_if_allowed(clients, ARMING, reviewed())
    assert again.armed and merge_puts(fake) == []
    fake.finish_check("head1111", "tests")
    assert fake.merges == [
        {"repo": REPO, "number": 7, "merge_method": "squash", "by": "auto-merge"}
    ]
    assert merge_if_allowed(clients, ARMING, reviewed()).reason == "already merged"


def test_auto_merge_refused_by_github_falls_back_to_waiting_here(fake_github, clients):
    fake, _ = fake_github
    setup(fake, runs="running")
    not_allowed = merge_if_allowed(clients, ARMING, reviewed())
    assert not not_allowed.armed and "Auto merge is not allowed" in not_allowed.reason
    # Allowed, but no required check is pending: GitHub would merge now ("unstable status"),
    # while our policy waits for every check.
    fake.allow_auto_merge[REPO] = True
    unstable = merge_if_allowed(clients, ARMING, reviewed())
    assert not unstable.armed and "unstable status" in unstable.reason and fake.merges == []
    fake.finish_check("head1111", "tests")
    assert merge_if_allowed(clients, ARMING, reviewed()).merged
    assert len(fake.merges) == 1 and "by" not in fake.merges[0]


def test_armed_auto_merge_is_disarmed_when_a_gate_closes(fake_github, clients):
    fake, _ = fake_github
    pr = setup(fake, runs="running")
    fake.allow_auto_merge[REPO] = True
    fake.required_checks[REPO] = ["tests"]
    assert merge_if_allowed(clients, ARMING, reviewed()).armed
    fake.push(REPO, 7, "head2222")
    fake.add_check("head2222", "tests")
    pr.unknown_reads = 0
    outcome = merge_if_allowed(clients, ARMING, reviewed(), armed_for="head1111")
    assert "new commits" in outcome.reason and "auto-merge disarmed" in outcome.reason
    assert pr.auto_merge is None
    fake.finish_check("head2222", "tests")
    assert fake.merges == []


def test_auto_merge_a_person_armed_is_theirs_to_keep(fake_github, clients):
    fake, _ = fake_github
    pr = setup(fake, runs="running")
    pr.auto_merge = {"enabled_by": {"login": "maintainer"}, "merge_method": "merge"}
    low = merge_if_allowed(clients, ARMING, reviewed(score=40))
    assert "below min_score" in low.reason and "disarmed" not in low.reason
    assert pr.auto_merge is not None and fake.graphql_calls == []


def test_policy_is_off_by_default_and_never_rests_on_the_score_alone():
    settings = GithubSettings()
    assert not settings.merge_policy(REPO).enabled
    with pytest.raises(ValidationError, match="never rests on the AI score alone"):
        MergePolicy(enabled=True, required_label=None, require_checks=False)
    with pytest.raises(ValidationError, match="never rests on the AI score alone"):
        MergePolicy(enabled=True, required_label=None, allow_no_checks=True)
    per_repo = GithubSettings.model_validate(
        {
            "merge": {
                "default": {"enabled": False},
                "Acme/API": {"enabled": True, "method": "rebase"},
            }
        }
    )
    assert per_repo.merge_policy(REPO).method == "rebase"
    assert not per_repo.merge_policy("acme/web").enabled
