"""Auto-merge policy: off unless enabled per repository, and never on the LLM's score alone.

A merge needs every gate: the score, no blocking finding from the built-in checks, the
required label (a human's decision), GitHub's own mergeability, passing checks, and a head that
has not moved since the review. The first gate that fails is the refusal's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.github.events import ReviewCompleted
from agents.github.settings import MergePolicy

__all__ = ["MergeOutcome", "checks_passed", "evaluate", "merge_if_allowed"]

_GOOD_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})


@dataclass
class MergeOutcome:
    merged: bool
    reason: str
    sha: str | None = None


def checks_passed(commit: Any) -> tuple[bool, str]:
    """All check runs finished well and the combined status (if any) is success."""
    for run in commit.get_check_runs():
        if run.status != "completed":
            return False, f"check {run.name!r} is {run.status}"
        if run.conclusion not in _GOOD_CONCLUSIONS:
            return False, f"check {run.name!r} concluded {run.conclusion}"
    status = commit.get_combined_status()
    # GitHub reports "pending" for a commit with no statuses at all; only real ones count.
    if status.total_count and status.state != "success":
        return False, f"commit status is {status.state}"
    return True, "checks passed"


def evaluate(
    policy: MergePolicy,
    review: ReviewCompleted,
    *,
    state: str,
    head: str,
    labels: list[str],
    mergeable: bool | None,
) -> MergeOutcome | None:
    """The refusal, or None when every gate that needs no further API call is open."""
    if not policy.enabled:
        return MergeOutcome(False, "auto-merge is not enabled for this repository")
    if state != "open":
        return MergeOutcome(False, f"pull request is {state}")
    if head != review.head_sha:
        return MergeOutcome(False, "new commits since the review")
    if review.score < policy.min_score:
        return MergeOutcome(False, f"score {review.score} is below min_score {policy.min_score}")
    if review.blocking:
        return MergeOutcome(False, f"{review.blocking} blocking finding(s) from built-in checks")
    wanted = policy.required_label
    if wanted and wanted.lower() not in {lbl.lower() for lbl in labels}:
        return MergeOutcome(False, f"label {wanted!r} is missing")
    if mergeable is None:
        return MergeOutcome(False, "GitHub has not computed mergeability yet")
    if not mergeable:
        return MergeOutcome(False, "pull request is not mergeable (conflicts)")
    return None


def merge_if_allowed(clients: Any, policy: MergePolicy, review: ReviewCompleted) -> MergeOutcome:
    """Blocking: run it in a thread. A merge already done counts as merged (re-runs are safe)."""
    if not policy.enabled:
        return MergeOutcome(False, "auto-merge is not enabled for this repository")
    gh = clients.for_installation(review.installation_id)
    pull = gh.get_repo(review.repo).get_pull(review.number)
    if pull.merged:
        return MergeOutcome(True, "already merged", pull.merge_commit_sha)
    refusal = evaluate(
        policy,
        review,
        state=pull.state,
        head=pull.head.sha,
        labels=[lbl.name for lbl in pull.labels],
        mergeable=pull.mergeable,
    )
    if refusal is not None:
        return refusal
    if policy.require_checks:
        ok, why = checks_passed(pull.base.repo.get_commit(review.head_sha))
        if not ok:
            return MergeOutcome(False, why)
    # Imported here, not at module load, so loading the steps does not pull in PyGithub.
    from github import GithubException

    try:
        status = pull.merge(merge_method=policy.method, sha=review.head_sha)
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        reason = message or "no reason given"
        return MergeOutcome(False, f"GitHub refused the merge ({exc.status}): {reason}")
    return MergeOutcome(bool(status.merged), status.message or "merged", status.sha)
