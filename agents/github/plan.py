"""Plan the LLM calls of one review: which parts of the diff go into which call.

A large pull request is reviewed in several calls instead of being cut down to one:

- Each file is one piece when it fits a call; a larger file is split between hunks, and a
  hunk larger than a call between lines. No file is dropped for being large.
- Pieces are chosen by what matters (source, then tests, other files, docs, removed files;
  within a kind the largest change first) until the review's total budget
  (`review.max_total_tokens`) or its number of calls (`review.max_calls`) is used up.
- The chosen pieces are packed into calls of at most `room` tokens each, related files next
  to each other (a module beside its tests), so one call sees them together.

Every token is counted here, with the same estimate the LLM client uses, and the prompt's fixed
part (instructions, schema, title, description, notes) is paid once per call: what a call sends
fits its budget, and nothing is trimmed later. What was left out is listed with the reason.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.github.diff import parse_patch
from agents.github.files import ChangedFile, relevance, render_header, render_hunk

__all__ = ["Call", "Piece", "Plan", "PlanError", "make_plan"]

Count = Callable[[str], int]


class PlanError(ValueError):
    """No call can hold any diff: the message names the setting to raise."""


@dataclass(frozen=True)
class Piece:
    """A file, or some of its hunks, or a slice of one hunk, ready for a prompt."""

    path: str
    index: int  # position within its file
    text: str
    tokens: int
    changed: int  # added and removed lines it shows
    hunks: tuple[int, int]  # first and last hunk shown, counted from 1
    of_hunks: int
    rank: int
    file_changed: int


@dataclass
class Call:
    pieces: list[Piece] = field(default_factory=list)
    tokens: int = 0  # of the diff text, separators included

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.pieces)

    @property
    def paths(self) -> list[str]:
        return list(dict.fromkeys(p.path for p in self.pieces))


@dataclass
class Plan:
    calls: list[Call]
    fixed_tokens: int  # paid by every call besides its diff text
    not_reviewed: list[str]  # one line per file: what was left out and why
    pieces: list[Piece]  # every piece of every file, chosen or not

    @property
    def estimated_tokens(self) -> int:
        return sum(self.fixed_tokens + c.tokens for c in self.calls)

    def changed_lines(self, ranks: frozenset[int] | None = None) -> tuple[int, int]:
        """(lines shown to the LLM, lines changed) over files of the given ranks."""
        chosen = {(p.path, p.index) for c in self.calls for p in c.pieces}
        pool = [p for p in self.pieces if ranks is None or p.rank in ranks]
        shown = sum(p.changed for p in pool if (p.path, p.index) in chosen)
        return shown, sum(p.changed for p in pool)


def _family(path: str) -> str:
    """A module and its tests share a family: `pkg/models.py` and `tests/test_models.py`."""
    stem = posixpath.splitext(posixpath.basename(path))[0].lower()
    return re.sub(r"^test_|_test$|_spec$|\.(test|spec)$", "", stem)


# A longer diff line (minified code, a data blob) is cut: it tells a reviewer nothing more.
# The review's Not reviewed list says where that happened.
_MAX_LINE = 1000
_CUT = " [... line cut]"


def _cap(line: str) -> str:
    return line if len(line) <= _MAX_LINE else line[:_MAX_LINE] + _CUT


def _cut_lines(text: str) -> int:
    return sum(
        1 for ln in text.split("\n") if len(ln) == _MAX_LINE + len(_CUT) and ln.endswith(_CUT)
    )


def _slices(lines: list[str], costs: list[int], room: int) -> list[tuple[list[str], int]]:
    out: list[tuple[list[str], int]] = []
    cur: list[str] = []
    used = 0
    for line, cost in zip(lines, costs, strict=True):
        if cur and used + cost > room:
            out.append((cur, used))
            cur, used = [], 0
        cur.append(line)
        used += cost
    if cur:
        out.append((cur, used))
    return out


def _pieces(f: ChangedFile, room: int, count: Count) -> list[Piece]:
    hunks = parse_patch(f.path, f.patch).hunks
    rendered = [[_cap(line) for line in render_hunk(h)] for h in hunks]
    changed = [sum(1 for ln in h.lines if ln.kind != " ") for h in hunks]
    rank, total = relevance(f), sum(changed)
    # Sums of per-line counts: an upper bound of the joined text's count (see tokens.py).
    costs = [[count(line) + 1 for line in r] for r in rendered]
    head, cont = render_header(f), render_header(f, continued=True)
    head_cost, cont_cost = count(head) + 1, count(cont) + 1
    out: list[Piece] = []

    def emit(lines: list[str], tokens: int, shown: int, first: int, last: int) -> None:
        header = head if not out else cont
        cost = (head_cost if not out else cont_cost) + tokens
        text = "\n".join([header, *lines])
        out.append(
            Piece(f.path, len(out), text, cost, shown, (first, last), len(hunks), rank, total)
        )

    group: list[str] = []
    group_cost = group_changed = 0
    first = 1
    for i, (lines, cost) in enumerate(zip(rendered, costs, strict=True), start=1):
        hunk_cost = sum(cost)
        if group and (cont_cost + group_cost + hunk_cost > room):
            emit(group, group_cost, group_changed, first, i - 1)
            group, group_cost, group_changed, first = [], 0, 0, i
        if cont_cost + hunk_cost <= room:
            group += lines
            group_cost += hunk_cost
            group_changed += changed[i - 1]
            continue
        # One hunk larger than a whole call: split it between lines.
        kinds = [ln.kind for ln in hunks[i - 1].lines]
        body_costs = cost[1:]
        sliced = _slices(lines[1:], body_costs, room - cont_cost - cost[0])
        at = 0
        for part, part_cost in sliced:
            shown = sum(1 for k in kinds[at : at + len(part)] if k != " ")
            emit([lines[0], *part], part_cost + cost[0], shown, i, i)
            at += len(part)
        first = i + 1
    if group:
        emit(group, group_cost, group_changed, first, len(hunks))
    return out


def _pack(chosen: list[Piece], room: int) -> list[Call]:
    calls: list[Call] = []
    ordered = sorted(chosen, key=lambda p: (_family(p.path), -p.rank, p.path, p.index))
    for piece in ordered:
        cost = piece.tokens + 1  # the blank line between pieces
        target = next((c for c in calls if c.tokens + cost <= room), None)
        if target is None:
            target = Call()
            calls.append(target)
        target.pieces.append(piece)
        target.tokens += cost
    for call in calls:
        call.pieces.sort(key=lambda p: (_family(p.path), -p.rank, p.path, p.index))
    return calls


def make_plan(
    files: list[ChangedFile],
    *,
    count: Count,
    room: int,
    fixed_tokens: int,
    max_calls: int,
    max_total_tokens: int,
) -> Plan:
    """Plan calls whose diff text is at most `room` tokens each, for `fixed_tokens` more each."""
    if room < 50:
        raise PlanError(
            f"only {room} tokens are left for the diff in one call: raise "
            "review.max_input_tokens in config/github.yaml, or shorten the instructions in "
            ".stepline.yml (the prompt's fixed part needs the rest)"
        )
    pieces = [p for f in files for p in _pieces(f, room, count)]
    by_priority = sorted(pieces, key=lambda p: (-p.rank, -p.file_changed, p.path, p.index))
    chosen: list[Piece] = []
    dropped: dict[tuple[str, int], str] = {}
    spent = 0
    cut_rank = -1  # once a piece of some kind is left out, no piece of a lesser kind goes in
    for piece in by_priority:
        # Fill up to the total budget, each call paying its fixed part at least once per `room`.
        calls_needed = 1 + (spent + piece.tokens) // max(room, 1)
        over = spent + piece.tokens + calls_needed * fixed_tokens > max_total_tokens
        if over or piece.rank < cut_rank:
            cut_rank = max(cut_rank, piece.rank)
            dropped[(piece.path, piece.index)] = "review.max_total_tokens"
            continue
        chosen.append(piece)
        spent += piece.tokens + 1
    calls = _pack(chosen, room)
    while chosen and (
        len(calls) > max_calls or sum(fixed_tokens + c.tokens for c in calls) > max_total_tokens
    ):
        last = chosen.pop()  # the least important piece goes first
        reason = "review.max_calls" if len(calls) > max_calls else "review.max_total_tokens"
        dropped[(last.path, last.index)] = reason
        calls = _pack(chosen, room)
    return Plan(calls, fixed_tokens, _not_reviewed(pieces, dropped), pieces)


def _not_reviewed(pieces: list[Piece], dropped: dict[tuple[str, int], str]) -> list[str]:
    notes: list[str] = []
    for path in dict.fromkeys(p.path for p in pieces):
        mine = [p for p in pieces if p.path == path]
        left = [p for p in mine if (p.path, p.index) in dropped]
        cut = sum(_cut_lines(p.text) for p in mine if (p.path, p.index) not in dropped)
        if cut:
            notes.append(
                f"`{path}`: {cut} line(s) longer than {_MAX_LINE} characters shown only in part"
            )
        if not left:
            continue
        reasons = " and ".join(sorted({dropped[(p.path, p.index)] for p in left}))
        lines = sum(p.changed for p in left)
        if len(left) == len(mine):
            notes.append(f"`{path}`: not reviewed ({lines} changed lines), over {reasons}")
            continue
        spans = sorted({p.hunks for p in left})
        where = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
        notes.append(
            f"`{path}`: hunk(s) {where} of {mine[0].of_hunks} not reviewed "
            f"({lines} changed lines), over {reasons}"
        )
    return notes
