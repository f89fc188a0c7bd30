"""Auto-merge policy: off unless enabled per repository, and never on the LLM's score alone.

A merge needs every gate: the score, no blocking finding from the built-in checks, the
required label (a human's decision), an author the policy accepts (forks only when allowed),
GitHub's own mergeability, passing checks (and at least one, unless `allow_no_checks`), and a
head that has not moved since the review. The first gate that fails is the refusal's reason.

GitHub computes `mergeable` after a push and answers null until then, and CI usually finishes
after the review: a refusal for either is not final. `MergeOutcome.pending` asks the caller to
read again later; check and label deliveries re-run the gate (`agents.github.automerge`). With
`github_auto_merge`, a pull request whose only open gate is running CI gets GitHub's own
auto-merge armed instead (GraphQL `enablePullRequestAutoMerge`, pinned to the reviewed head),
and it is disarmed again if a gate closes (new commits, label removed) before GitHub merges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.github.client import github_reason
from agents.github.events import ReviewCompleted
from agents.github.settings import MergePolicy

__all__ = [
    "ALREADY",
    "ChecksVerdict",
    "MergeOutcome",
    "PullFacts",
    "checks_verdict",
    "evaluate",
    "merge_if_allowed",
]

_GOOD_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
ALREADY = "already merged"


@dataclass
class MergeOutcome:
    merged: bool
    reason: str
    sha: str | None = None
    pending: bool = False  # GitHub is still computing mergeability: read again later
    armed: bool = False  # GitHub's auto-merge is armed: GitHub merges when checks pass
    armed_now: bool = False  # ... and this attempt armed it


@dataclass
class PullFacts:
    """What the gate reads from one pull request, in one API answer."""

    state: str
    head: str
    labels: list[str]
    mergeable: bool | None
    author: str = ""
    fork: bool = False
    auto_merge: bool = False

    @classmethod
    def from_pull(cls, pull: Any) -> PullFacts:
        head_repo = pull.head.repo  # None when the fork was deleted
        base_name = str(pull.base.repo.full_name).lower()
        fork = head_repo is None or str(head_repo.full_name).lower() != base_name
        return cls(
            state=pull.state,
            head=pull.head.sha,
            labels=[lbl.name for lbl in pull.labels],
            mergeable=pull.mergeable,
            author=str(pull.user.login) if pull.user else "",
            fork=fork,
            auto_merge=bool(pull.auto_merge),
        )


@dataclass
class ChecksVerdict:
    ok: bool
    reason: str
    running: bool = False  # not failed: some check has not finished yet


def checks_verdict(commit: Any, policy: MergePolicy) -> ChecksVerdict:
    """All check runs finished well, the combined status (if any) is success, and something
    ran at all unless the policy allows a repository without checks."""
    running: str | None = None
    runs = 0
    for run in commit.get_check_runs():
        runs += 1
        if run.status != "completed":
            running = running or f"check {run.name!r} is {run.status}"
        elif run.conclusion not in _GOOD_CONCLUSIONS:
            return ChecksVerdict(False, f"check {run.name!r} concluded {run.conclusion}")
    status = commit.get_combined_status()
    # GitHub reports "pending" for a commit with no statuses at all; only real ones count.
    if status.total_count and status.state == "pending":
        running = running or "commit status is pending"
    elif status.total_count and status.state != "success":
        return ChecksVerdict(False, f"commit status is {status.state}")
    if running:
        return ChecksVerdict(False, running, running=True)
    if not runs and not status.total_count:
        if policy.allow_no_checks:
            return ChecksVerdict(True, "no checks ran (allowed by allow_no_checks)")
        why = "no checks ran (allow_no_checks: true merges a repository without CI)"
        return ChecksVerdict(False, why)
    return ChecksVerdict(True, "checks passed")


def evaluate(policy: MergePolicy, review: ReviewCompleted, pull: PullFacts) -> MergeOutcome | None:
    """The refusal, or None when every gate that needs no further API call is open."""
    if not policy.enabled:
        return MergeOutcome(False, "auto-merge is not enabled for this repository")
    if pull.state != "open":
        return MergeOutcome(False, f"pull request is {pull.state}")
    if pull.head != review.head_sha:
        return MergeOutcome(False, "new commits since the review")
    if pull.fork and not policy.allow_forks:
        return MergeOutcome(False, "pull request comes from a fork (allow_forks is off)")
    if not policy.allows_author(pull.author):
        return MergeOutcome(False, f"author {pull.author!r} is not in the policy's authors")
    if review.score < policy.min_score:
        return MergeOutcome(False, f"score {review.score} is below min_score {policy.min_score}")
    if review.blocking:
        return MergeOutcome(False, f"{review.blocking} blocking finding(s) from built-in checks")
    wanted = policy.required_label
    if wanted and wanted.lower() not in {lbl.lower() for lbl in pull.labels}:
        return MergeOutcome(False, f"label {wanted!r} is missing")
    if pull.mergeable is None:
        return MergeOutcome(False, "GitHub has not computed mergeability yet", pending=True)
    if not pull.mergeable:
        return MergeOutcome(False, "pull request is not mergeable (conflicts)")
    return None


def merge_if_allowed(
    clients: Any,
    policy: MergePolicy,
    review: ReviewCompleted,
    repo_configs: Any = None,
    armed_for: str | None = None,
) -> MergeOutcome:
    """Blocking: run it in a thread. A merge already done counts as merged (re-runs are safe).

    `repo_configs` (a `RepoConfigCache`) lets the repository's `.stepline.yml` on the base
    commit narrow the policy; it can never widen it. `armed_for` is the head sha we armed
    GitHub's auto-merge for, if we did: only such an arm is disarmed on a refusal (one a person
    armed is their decision), and one pinned to an older head is disarmed at once.
    """
    if not policy.enabled:
        return MergeOutcome(False, "auto-merge is not enabled for this repository")
    gh = clients.for_installation(review.installation_id)
    pull = gh.get_repo(review.repo).get_pull(review.number)
    if pull.merged:
        return MergeOutcome(True, ALREADY, pull.merge_commit_sha)
    if repo_configs is not None:
        policy = repo_configs.for_pull(pull).merge_policy(policy)
    facts = PullFacts.from_pull(pull)
    stale = ""
    if facts.auto_merge and armed_for is not None and armed_for != facts.head:
        stale, facts.auto_merge = "; armed for an older head, " + _disarm(pull), False
    refusal = evaluate(policy, review, facts)
    if refusal is not None:
        if facts.auto_merge and armed_for is not None and not refusal.pending:
            refusal.reason += "; " + _disarm(pull)
        refusal.reason += stale
        return refusal
    if facts.auto_merge:
        why = "GitHub's auto-merge is armed: GitHub merges when the required checks pass"
        return MergeOutcome(False, why, armed=True)
    if policy.require_checks:
        verdict = checks_verdict(pull.base.repo.get_commit(review.head_sha), policy)
        if not verdict.ok:
            if verdict.running and policy.github_auto_merge:
                return _arm(pull, policy, review, verdict.reason)
            return MergeOutcome(False, verdict.reason)
    return _merge(pull, policy, review)


def _merge(pull: Any, policy: MergePolicy, review: ReviewCompleted) -> MergeOutcome:
    # Imported here, not at module load, so loading the steps does not pull in PyGithub.
    from github import GithubException

    try:
        status = pull.merge(merge_method=policy.method, sha=review.head_sha)
    except GithubException as exc:
        pull.update()  # another run (or GitHub's auto-merge) may have merged it meanwhile
        if pull.merged:
            return MergeOutcome(True, ALREADY, pull.merge_commit_sha)
        reason = f"GitHub refused the merge ({exc.status}): {github_reason(exc)}"
        return MergeOutcome(False, reason)
    return MergeOutcome(bool(status.merged), status.message or "merged", status.sha)


def _arm(pull: Any, policy: MergePolicy, review: ReviewCompleted, waiting: str) -> MergeOutcome:
    from github import GithubException

    try:
        pull.enable_automerge(merge_method=policy.method.upper(), expected_head_oid=review.head_sha)
    except GithubException as exc:
        # "... is in clean/unstable status": GitHub would merge now, because none of the checks
        # still running is required there. Waiting for them here is the stricter choice.
        return MergeOutcome(
            False, f"{waiting}; GitHub's auto-merge not armed: {github_reason(exc)}"
        )
    why = f"{waiting}: GitHub's auto-merge armed, GitHub merges when the required checks pass"
    return MergeOutcome(False, why, armed=True, armed_now=True)


def _disarm(pull: Any) -> str:
    from github import GithubException

    try:
        pull.disable_automerge()
    except GithubException as exc:
        return f"GitHub's auto-merge could not be disarmed: {github_reason(exc)}"
    return "GitHub's auto-merge disarmed"
