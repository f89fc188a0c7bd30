"""Unified-diff hunks of one file, and where a review comment may legally sit in them.

GitHub accepts a review comment only on a line that appears in the pull request's diff:
side RIGHT for added or context lines (new file numbering), side LEFT for removed or context
lines (old file numbering); a multi-line comment's `start_line` must lie in the same hunk, on a
line before `line`. Anything else is answered 422 and the whole review is refused, so every
comment is placed here first: kept, moved to the nearest line of its hunk, turned into a
file-level comment (a changed file, but no hunk near the line), or folded into the summary.

Lines are the `\\n`-separated lines of GitHub's patch, exactly as GitHub counts them: a form
feed, vertical tab, U+2028, NEL or lone CR inside a line is part of that line's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DiffLine", "FileDiff", "Hunk", "Placement", "Side", "parse_patch", "place"]

Side = Literal["LEFT", "RIGHT"]
_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["+", "-", " "]
    text: str
    old: int | None  # line number in the old file (None for an added line)
    new: int | None  # line number in the new file (None for a removed line)


@dataclass
class Hunk:
    lines: list[DiffLine] = field(default_factory=list)

    def numbers(self, side: Side) -> list[int]:
        if side == "RIGHT":
            return [ln.new for ln in self.lines if ln.new is not None]
        return [ln.old for ln in self.lines if ln.old is not None]

    def span(self, side: Side) -> tuple[int, int] | None:
        nums = self.numbers(side)
        return (min(nums), max(nums)) if nums else None


@dataclass
class FileDiff:
    path: str
    hunks: list[Hunk] = field(default_factory=list)

    def added(self) -> list[DiffLine]:
        return [ln for h in self.hunks for ln in h.lines if ln.kind == "+"]

    def removed(self) -> list[DiffLine]:
        return [ln for h in self.hunks for ln in h.lines if ln.kind == "-"]

    def valid(self, line: int, side: Side) -> bool:
        return self.hunk_index(line, side) is not None

    def hunk_index(self, line: int, side: Side) -> int | None:
        for i, h in enumerate(self.hunks):
            if line in h.numbers(side):
                return i
        return None

    def text_at(self, line: int, side: Side) -> str | None:
        """The text of `line` on `side` as the diff shows it, None when the diff does not."""
        for h in self.hunks:
            for ln in h.lines:
                if (ln.new if side == "RIGHT" else ln.old) == line:
                    return ln.text
        return None


def parse_patch(path: str, patch: str | None) -> FileDiff:
    """Parse the `patch` GitHub gives per file (hunks only, no ---/+++ header)."""
    diff = FileDiff(path)
    if not patch:
        return diff
    old = new = 0
    hunk: Hunk | None = None
    rows = patch.split("\n")
    if rows and rows[-1] == "":
        rows.pop()  # a patch that ends with "\n" has no empty line after it
    for raw in rows:
        header = _HEADER.match(raw)
        if header:
            old, new = int(header.group(1)), int(header.group(3))
            hunk = Hunk()
            diff.hunks.append(hunk)
            continue
        if hunk is None or raw.startswith("\\"):
            continue  # text before the first hunk, or "\ No newline at end of file"
        kind, text = (raw[0], raw[1:]) if raw else (" ", "")
        if kind == "+":
            hunk.lines.append(DiffLine("+", text, None, new))
            new += 1
        elif kind == "-":
            hunk.lines.append(DiffLine("-", text, old, None))
            old += 1
        else:
            hunk.lines.append(DiffLine(" ", text, old, new))
            old += 1
            new += 1
    return diff


@dataclass(frozen=True)
class Placement:
    """Where a comment ends up.

    `line`/`side` (and `start_line` for a range) in the diff; `file_level` for a comment on the
    file as a whole; neither when folded into the summary.
    """

    line: int | None
    side: Side
    moved_from: int | None = None
    start_line: int | None = None
    file_level: bool = False

    @property
    def folded(self) -> bool:
        return self.line is None and not self.file_level


def place(
    diff: FileDiff | None, line: int | None, side: str = "RIGHT", start_line: int | None = None
) -> Placement:
    """Keep a valid position, else move it to the nearest line of the hunk it falls in or
    next to (within `_NEAR` lines), else make it file-level when the file has hunks, else fold.

    A range keeps its `start_line` only when both ends are valid lines of one hunk."""
    want: Side = "LEFT" if str(side).upper() == "LEFT" else "RIGHT"
    if diff is None or line is None or not diff.hunks:
        return Placement(None, want, line)
    at = diff.hunk_index(line, want)
    if at is not None:
        same_hunk = start_line is not None and diff.hunk_index(start_line, want) == at
        start = start_line if same_hunk and start_line is not None and start_line < line else None
        return Placement(line, want, start_line=start)
    best: tuple[int, int] | None = None
    for hunk in diff.hunks:
        span = hunk.span(want)
        if span is None:
            continue
        lo, hi = span
        if lo - _NEAR <= line <= hi + _NEAR:
            for candidate in hunk.numbers(want):
                dist = abs(candidate - line)
                if best is None or dist < best[0]:
                    best = (dist, candidate)
    if best is None:
        return Placement(None, want, line, file_level=True)
    return Placement(best[1], want, moved_from=line)


# How far outside a hunk a model's line number may fall and still be taken to mean that hunk;
# further away the comment most likely concerns code the diff does not show.
_NEAR = 3
