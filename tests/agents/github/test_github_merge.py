"""The merge policy against the loopback GitHub: every gate refuses on its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.github.events import ReviewCompleted
from agents.github.merge import merge_if_allowed
from agents.github.settings import GithubSettings, MergePolicy
from tests.fakes.common import Reply
from tests.fakes.github_server import FakePull, file_entry

REPO = "acme/api"
POLICY = MergePolicy(enabled=True, min_score=80, required_label="automerge", method="squash")


def setup(fake, **kw) -> FakePull:
    values = {
        "number": 7,
        "head_sha": "head1111",
        "labels": ["automerge"],
        "files": [file_entry("a.py", "@@ -1 +1 @@\n-a\n+b")],
        **kw,
    }
    fake.check_runs["head1111"] = [
        {"id": 1, "name": "tests", "status": "completed", "conclusion": "success"},
        {"id": 2, "name": "lint", "status": "completed", "conclusion": "skipped"},
    ]
    return fake.add_pull(REPO, FakePull(**values))


def reviewed(score: int = 92, **kw) -> ReviewCompleted:
    return ReviewCompleted(repo=REPO, number=7, head_sha="head1111", score=score, comments=0, **kw)


def test_merges_when_every_gate_is_open(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    outcome = merge_if_allowed(clients, POLICY, reviewed())
    assert outcome.merged, outcome.reason
    assert fake.merges == [{"repo": REPO, "number": 7, "merge_method": "squash", "sha": "head1111"}]
    # A re-run (at-least-once delivery) reports the merge without merging again.
    again = merge_if_allowed(clients, POLICY, reviewed())
    assert again.merged and len(fake.merges) == 1


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
    ],
)
def test_each_gate_refuses_with_its_reason(fake_github, clients, change, review, reason):
    fake, _ = fake_github
    setup(fake, **change)
    outcome = merge_if_allowed(clients, POLICY, review)
    assert not outcome.merged and reason in outcome.reason
    assert fake.merges == [] and fake.calls(r".*/merge", "PUT") == []


def test_failed_or_pending_checks_refuse(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    fake.check_runs["head1111"][0]["conclusion"] = "failure"
    assert "'tests' concluded failure" in merge_if_allowed(clients, POLICY, reviewed()).reason
    fake.check_runs["head1111"][0].update(status="in_progress", conclusion=None)
    assert "'tests' is in_progress" in merge_if_allowed(clients, POLICY, reviewed()).reason
    fake.check_runs["head1111"] = []
    fake.statuses["head1111"] = [{"state": "pending", "context": "ci/legacy"}]
    assert "status is pending" in merge_if_allowed(clients, POLICY, reviewed()).reason
    assert fake.merges == []


def test_github_405_is_a_refusal_not_a_crash(fake_github, clients):
    fake, _ = fake_github
    setup(fake)
    fake.inject(
        r"/repos/acme/api/pulls/7/merge",
        Reply.json({"message": "Pull Request is not mergeable"}, 405),
        method="PUT",
    )
    outcome = merge_if_allowed(clients, POLICY, reviewed())
    assert not outcome.merged and "405" in outcome.reason and "not mergeable" in outcome.reason


def test_policy_is_off_by_default_and_never_rests_on_the_score_alone():
    settings = GithubSettings()
    assert not settings.merge_policy(REPO).enabled
    with pytest.raises(ValidationError, match="never rests on the AI score alone"):
        MergePolicy(enabled=True, required_label=None, require_checks=False)
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
