"""The data that travels on the GitHub flow's topics, named once for every step."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "TOPIC_MERGED",
    "TOPIC_MERGE_CHECK",
    "TOPIC_OPENED",
    "TOPIC_REPORT",
    "TOPIC_REVIEWED",
    "TOPIC_REVIEW_REQUESTED",
    "MergeCheck",
    "PullRequestEvent",
    "ReviewCompleted",
    "ReviewRequest",
    "installation",
    "pull_request",
]

TOPIC_OPENED = "github.pr.opened"
TOPIC_REVIEW_REQUESTED = "github.review.requested"
TOPIC_REVIEWED = "github.review.completed"
TOPIC_MERGED = "github.pr.merged"
TOPIC_REPORT = "github.report.generated"
TOPIC_MERGE_CHECK = "github.merge.check"


# Flow-control keys of the steps (named, so `stepline steps` and the Workbench can say which).
def pull_request(data: Any) -> str:
    """One pull request: `owner/repo#number`, the repository's case folded as GitHub does."""
    return f"{data['repo'].lower()}#{data['number']}"


def installation(data: Any) -> str:
    """The account GitHub's rate limits count a write against: for an App, its installation;
    "token" for a personal token."""
    return str(data.get("installation_id") or "token")


class PullRequestEvent(BaseModel):
    """A pull request that was opened or merged, as far as notifications and counters care."""

    repo: str
    number: int
    title: str = ""
    author: str = ""
    url: str = ""
    merged_by: str | None = None


class ReviewRequest(BaseModel):
    """Ask the review step to review one pull request at its current head."""

    repo: str
    number: int
    action: str
    head_sha: str | None = None
    before_sha: str | None = None
    installation_id: int | None = None
    title: str = ""
    author: str = ""
    url: str = ""
    # "auto" for pull_request events; "comment-<id>" for a /review comment, so that a comment
    # asks for a fresh review while a redelivered event finds the review it already posted.
    trigger: str = "auto"


class ReviewCompleted(BaseModel):
    repo: str
    number: int
    head_sha: str
    score: int
    comments: int
    folded: int = 0
    findings: dict[str, int] = Field(default_factory=dict)
    blocking: int = 0
    reviewer: str = "rules"
    review_id: int | None = None
    review_url: str = ""
    url: str = ""
    title: str = ""
    installation_id: int | None = None
    trigger: str = "auto"
    already_posted: bool = False


class MergeCheck(BaseModel):
    """Look at the merge gate of some pull requests again: something it waits for changed.

    `numbers` come from the delivery when it names its pull requests (check suites and runs
    of same-repository branches); otherwise the pull requests whose head is `head_sha` are
    looked up (commit statuses, and check suites of forks, which GitHub lists without them).
    """

    repo: str
    numbers: list[int] = Field(default_factory=list)
    head_sha: str | None = None
    installation_id: int | None = None
    cause: str
    rechecks: int = Field(0, ge=0)
    """How many times mergeability was read again for this check already (delayed emits)."""
