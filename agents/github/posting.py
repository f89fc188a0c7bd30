"""Where each finding goes on GitHub, and the review's body with its hidden marker.

Every comment is checked against the pull request's diff before anything is sent (see diff.py):
inline on its line or range, a file-level comment when the file changed but no hunk is near the
line, or folded into the summary. A finding already posted on the same code by an earlier review
(same fingerprint) is not repeated.

The marker is an HTML comment, invisible on GitHub, that carries what a retried run needs to
report the review it already posted: head sha, trigger, score and comment count.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from agents.github.diff import FileDiff, parse_patch, place
from agents.github.findings import ReviewComment, ReviewResult

__all__ = [
    "MAX_BODY",
    "Earlier",
    "Placed",
    "Planned",
    "PostedReview",
    "find_posted",
    "fingerprint",
    "marker",
    "place_comments",
    "posted_findings",
    "render_body",
]

# GitHub refuses a review body longer than this many characters (422 for the whole review).
MAX_BODY = 65_536

_MARKER = re.compile(
    r"<!-- stepline-review head=(?P<head>[0-9a-zA-Z]+) trigger=(?P<trigger>[\w-]+) "
    r"score=(?P<score>\d+) comments=(?P<comments>\d+) blocking=(?P<blocking>\d+) -->"
)
_SEVERITY_ICON = {"critical": "🛑", "high": "🔴", "medium": "🟠", "low": "🟡", "info": "💬"}
_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


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


def _by(item: Any, author: str | None) -> bool:
    """Whether `item` (a review or comment) was written by `author` (any author when None)."""
    login = getattr(getattr(item, "user", None), "login", None)
    return author is None or str(login or "").lower() == author.lower()


def find_posted(
    pull: Any, head: str, trigger: str, author: str | None = None
) -> PostedReview | None:
    """The review this flow already posted for `head` and `trigger`, reading all pages; only
    `author`'s reviews count (anyone can post a review with a copied marker)."""
    for review in pull.get_reviews():
        if not _by(review, author):
            continue
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


_FINDING = re.compile(r"<!-- stepline-finding (?P<fp>[0-9a-f]{16}) -->")


@dataclass
class Earlier:
    """Our findings already on the pull request: their fingerprints (an exact repeat is not
    posted) and, most severe first, what each said where (shown to the reviewer, so that the
    model does not raise the same problem again in other words)."""

    fingerprints: set[str] = field(default_factory=set)
    said: list[str] = field(default_factory=list)


_SAID = re.compile(r"\*\*(?P<sev>critical|high|medium|low|info)\*\*: (?P<text>[^\n]*)")


def posted_findings(pull: Any, author: str | None = None) -> Earlier:
    """What `author`'s review comments on the pull request hold (every page): the hidden
    fingerprints, even when the state that remembers them was lost, and their problems."""
    earlier = Earlier()
    said: list[tuple[int, str]] = []
    for c in pull.get_review_comments():
        if not _by(c, author):
            continue
        found = {m["fp"] for m in _FINDING.finditer(c.body or "")}
        if not found:
            continue  # not one of our findings (a reply, someone else's)
        earlier.fingerprints |= found
        what = _SAID.search(c.body or "")
        if what is None:
            continue
        # GitHub lists `line` null for a comment on the whole file (and on an outdated line).
        where = f"line {c.line}" if c.line else "file"
        text = _one_line(what["text"].strip()[:_SAID_CHARS])
        said.append((_ORDER.get(what["sev"], 5), f"`{_one_line(c.path or '')}` {where}: {text}"))
    earlier.said = [text for _, text in sorted(said, key=lambda x: x[0])]
    return earlier


# Each earlier finding as the reviewer is shown it: its first sentence or so.
_SAID_CHARS = 160


def _one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped: what earlier reviews
    said goes into the system message, and a file name (the author's; git allows newlines in
    it) must not start a line of its own there."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def fingerprint(path: str, code: str | None, problem: str) -> str:
    """Same file, same line content, same problem: the same finding, wherever the line moved."""
    words = re.sub(r"[^a-z0-9]+", " ", problem.lower()).strip()[:160]
    text = " ".join((code or "").split())
    return hashlib.sha256(f"{path}\0{text}\0{words}".encode()).hexdigest()[:16]


@dataclass
class Planned:
    """One comment as GitHub will receive it, with the finding it came from."""

    payload: dict[str, Any]
    comment: ReviewComment
    fingerprint: str

    @property
    def file_level(self) -> bool:
        return self.payload.get("subject_type") == "file"


@dataclass
class Placed:
    inline: list[Planned]
    file_level: list[Planned]
    folded: list[ReviewComment]
    moved: int
    repeated: int = 0
    refused: list[tuple[ReviewComment, str]] = field(default_factory=list)

    @property
    def posted(self) -> list[Planned]:
        return [*self.inline, *self.file_level]


def _comment_body(c: ReviewComment, note: str, suggest: bool, fp: str) -> str:
    text = f"{_SEVERITY_ICON.get(c.severity, '')} **{c.severity}**: {c.body}{note}"
    if suggest and c.suggestion:
        # A suggestion replaces exactly the commented line (or range), so only there.
        text += f"\n\n```suggestion\n{c.suggestion.rstrip()}\n```"
    return f"{text}\n<!-- stepline-finding {fp} -->"


def place_comments(
    comments: list[ReviewComment],
    patches: dict[str, str | None],
    limit: int,
    known: set[str] | frozenset[str] = frozenset(),
) -> Placed:
    """Check each comment against the pull request's diff; move, widen or fold what GitHub
    would reject; drop what an earlier review already said (`known` fingerprints)."""
    diffs: dict[str, FileDiff] = {p: parse_patch(p, patch) for p, patch in patches.items()}
    placed = Placed([], [], [], 0)
    seen: set[str] = set()
    for c in sorted(comments, key=lambda c: _ORDER.get(c.severity, 5)):
        diff = diffs.get(c.path)
        where = place(diff, c.line, c.side, c.start_line)
        if where.folded or diff is None:
            placed.folded.append(c)
            continue
        code = diff.text_at(where.line, where.side) if where.line is not None else None
        fp = fingerprint(c.path, code if where.moved_from is None else None, c.body)
        if fp in known:
            placed.repeated += 1
            continue
        if fp in seen:
            continue
        seen.add(fp)
        if len(placed.posted) >= limit:
            placed.folded.append(c)
            continue
        if where.file_level:
            note = f"\n\n_(about line {c.line}, which the diff does not show)_"
            body = _comment_body(c, note, False, fp)
            on_file = {"path": c.path, "body": body, "subject_type": "file"}
            placed.file_level.append(Planned(on_file, c, fp))
            continue
        note = ""
        if where.moved_from is not None:
            placed.moved += 1
            note = f"\n\n_(about line {where.moved_from}, outside the diff)_"
        # A suggestion for a range GitHub would not take must not land on a single line.
        ranged_as_asked = (c.start_line is None) == (where.start_line is None)
        suggest = where.side == "RIGHT" and not note and ranged_as_asked
        payload: dict[str, Any] = {
            "path": c.path,
            "line": where.line,
            "side": where.side,
            "body": _comment_body(c, note, suggest, fp),
        }
        if where.start_line is not None:
            payload.update(start_line=where.start_line, start_side=where.side)
        placed.inline.append(Planned(payload, c, fp))
    return placed


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
    if placed.refused:
        lines += ["", "**Comments GitHub refused to place**", ""]
        lines += [
            f"- `{c.path}` line {c.line} ({c.severity}): {c.body} _(GitHub: {why})_"
            for c, why in placed.refused
        ]
    if placed.repeated:
        lines += ["", f"_{placed.repeated} finding(s) already posted earlier are not repeated._"]
    if notes:
        lines += ["", "<details><summary>Not reviewed</summary>", ""]
        lines += [f"- {n}" for n in notes]
        lines += ["", "</details>"]
    tail = [
        "",
        f"_Reviewed by {reviewer} at {head[:7]}._",
        marker(head, trigger, result.score, len(placed.posted), blocking),
    ]
    body = "\n".join(lines)
    end = "\n".join(tail)
    if len(body) + len(end) > MAX_BODY:
        cut = "\n\n_[... cut to GitHub's limit on a review's length]_"
        body = body[: MAX_BODY - len(end) - len(cut) - 1] + cut
    return f"{body}\n{end}"
