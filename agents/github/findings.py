"""What a reviewer produces: a summary, a score and inline comments (the LLM's output schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["BLOCKING", "SEVERITY_WEIGHT", "ReviewComment", "ReviewResult", "Severity", "rule_score"]

Severity = Literal["info", "low", "medium", "high", "critical"]
BLOCKING: frozenset[str] = frozenset({"high", "critical"})
SEVERITY_WEIGHT: dict[str, int] = {"info": 0, "low": 3, "medium": 10, "high": 25, "critical": 40}


class ReviewComment(BaseModel):
    path: str = Field(description="File path exactly as shown in the diff header")
    line: int = Field(description="Line number in the file on the given side (a range's last)")
    start_line: int | None = Field(
        None, description="First line of a multi-line comment (same side and hunk), else null"
    )
    side: Literal["LEFT", "RIGHT"] = Field(
        "RIGHT", description="RIGHT for added or unchanged lines, LEFT for removed lines"
    )
    severity: Severity = "medium"
    body: str = Field(description="The problem and why it matters, in one or two sentences")
    suggestion: str | None = Field(
        None,
        description="Replacement code for the commented line (or start_line..line), "
        "without markdown fences",
    )


class ReviewResult(BaseModel):
    summary: str = Field(description="Two to five sentences on what the change does and its risks")
    score: int = Field(ge=0, le=100, description="0 = must not merge, 100 = ready to merge")
    comments: list[ReviewComment] = Field(default_factory=list)


def rule_score(comments: list[ReviewComment]) -> int:
    """A score from findings alone, for reviews made without an LLM."""
    return max(0, 100 - sum(SEVERITY_WEIGHT.get(c.severity, 0) for c in comments))
