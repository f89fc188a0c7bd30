"""Post one review per (head commit, trigger), found again by a hidden marker on a retry.

The marker is an HTML comment, invisible on GitHub, that carries what a retried run needs to
report the review it already posted: head sha, trigger, score and comment count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agents.github.diff import FileDiff, parse_patch, place
from agents.github.findings import ReviewComment, ReviewResult

__all__ = [
    "Placed",
    "PostedReview",
    "find_posted",
    "marker",
    "place_comments",
    "post_review",
    "render_body",
]

_MARKER = re.compile(
    r"<!-- stepline-review head=(?P<head>[0-9a-zA-Z]+) trigger=(?P<trigger>[\w-]+) "
    r"score=(?P<score>\d+) comments=(?P<comments>\d+) blocking=(?P<blocking>\d+) -->"
)
_SEVERITY_ICON = {"critical": "🛑", "high": "🔴", "medium": "🟠", "low": "🟡", "info": "💬"}


def marker(head: str, trigger: str, score: int, comments: int, blocking: int) -> str:
    return (
        f"<!-- stepline-review head={head} trigger={trigger} score={score} "
        f"comments={comments} blocking={blocking} -->"
    )


@dataclass
class PostedReview:
    id: int
    url: str
    score: int
    comments: int
    blocking: int
    already: bool


def find_posted(pull: Any, head: str, trigger: str) -> PostedReview | None:
    """The review this flow already posted for `head` and `trigger`, reading all pages."""
    for review in pull.get_reviews():
        found = _MARKER.search(review.body or "")
        if found and found["head"] == head and found["trigger"] == trigger:
            return PostedReview(
                review.id,
                review.html_url or "",
                int(found["score"]),
                int(found["comments"]),
                int(found["blocking"]),
                already=True,
            )
    return None


@dataclass
class Placed:
    inline: list[dict[str, Any]]
    folded: list[ReviewComment]
    moved: int


def _comment_body(c: ReviewComment, note: str = "") -> str:
    text = f"{_SEVERITY_ICON.get(c.severity, '')} **{c.severity}**: {c.body}{note}"
    if c.suggestion and c.side == "RIGHT" and not note:
        # A suggestion replaces the commented line, so it only makes sense on the exact line.
        text += f"\n\n```suggestion\n{c.suggestion.rstrip()}\n```"
    return text


def place_comments(
    comments: list[ReviewComment], patches: dict[str, str | None], limit: int
) -> Placed:
    """Check each comment against the pull request's diff; move or fold what GitHub would reject."""
    diffs: dict[str, FileDiff] = {p: parse_patch(p, patch) for p, patch in patches.items()}
    inline: list[dict[str, Any]] = []
    folded: list[ReviewComment] = []
    moved = 0
    seen: set[tuple[str, int, str, str]] = set()
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    for c in sorted(comments, key=lambda c: order.get(c.severity, 5)):
        where = place(diffs.get(c.path), c.line, c.side)
        if where.folded or len(inline) >= limit:
            folded.append(c)
            continue
        key = (c.path, where.line or 0, where.side, c.body)
        if key in seen:
            continue
        seen.add(key)
        note = ""
        if where.moved_from is not None:
            moved += 1
            note = f"\n\n_(about line {where.moved_from}, outside the diff)_"
        inline.append(
            {"path": c.path, "line": where.line, "side": where.side, "body": _comment_body(c, note)}
        )
    return Placed(inline, folded, moved)


def render_body(
    result: ReviewResult,
    placed: Placed,
    notes: list[str],
    reviewer: str,
    head: str,
    trigger: str,
    blocking: int,
) -> str:
    lines = [f"### Stepline review: {result.score}/100", "", result.summary.strip()]
    if placed.folded:
        lines += ["", "**Comments on lines outside the diff**", ""]
        lines += [f"- `{c.path}` line {c.line} ({c.severity}): {c.body}" for c in placed.folded]
    if notes:
        lines += ["", "<details><summary>Not reviewed</summary>", ""]
        lines += [f"- {n}" for n in notes]
        lines += ["", "</details>"]
    lines += [
        "",
        f"_Reviewed by {reviewer} at {head[:7]}._",
        marker(head, trigger, result.score, len(placed.inline), blocking),
    ]
    return "\n".join(lines)


def post_review(
    pull: Any, head: str, body: str, inline: list[dict[str, Any]], score: int, blocking: int
) -> PostedReview:
    """One COMMENT review pinned to `head`, so comments land on the diff that was reviewed."""
    commit = pull.base.repo.get_commit(head)
    review = pull.create_review(commit=commit, body=body, event="COMMENT", comments=inline)
    url = review.html_url or ""
    return PostedReview(review.id, url, score, len(inline), blocking, already=False)
