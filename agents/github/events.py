"""The data that travels on the GitHub flow's topics, named once for every step."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "TOPIC_MERGED",
    "TOPIC_OPENED",
    "TOPIC_REPORT",
    "TOPIC_REVIEWED",
    "TOPIC_REVIEW_REQUESTED",
    "PullRequestEvent",
    "ReviewCompleted",
    "ReviewRequest",
]

TOPIC_OPENED = "github.pr.opened"
TOPIC_REVIEW_REQUESTED = "github.review.requested"
TOPIC_REVIEWED = "github.review.completed"
TOPIC_MERGED = "github.pr.merged"
TOPIC_REPORT = "github.report.generated"


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
