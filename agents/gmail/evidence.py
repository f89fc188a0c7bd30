"""Combining spam sources as evidence, not as a mean.

Each source (rules, Bayes, LLM) says how likely spam is; as log-odds, independent evidence
adds up. So a confident source decides (Bayes at 0.999 is +6.9, rules that found nothing
about -2), agreement strengthens, and a source that found nothing no longer vetoes one that
found a lot. `spam.weights` scale each source's log-odds (1 = take it as it comes).

The LLM is different: it reads text the sender wrote, and that text can tell it what to
answer. So its verdict may raise a score, but it may lower one only when the local evidence
is weak: never when a strong rule fired (a failed DMARC, a link that shows one domain and
opens another) or the local sources alone reach the unsure mark (`spam.unsure`). Below the
threshold alone is not weak: a mail the rules put in the unsure band is one an attacker wants
unlabelled, and "answer 0" in its text must not take the Stepline/Unsure warning off it.

The Bayes model reads the same attacker text (words the user's wanted mail is full of can be
pasted into a phish), so a strong sign is protected against it too: a mail with a strong
sign never ends below the unsure mark (or below what the rules alone say, if that is lower)
because of a lowering source. It is labelled Stepline/Unsure, never silently cleared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Combined", "Evidence", "combine", "logit", "sigmoid"]

LIMIT = 9.0  # |log-odds| any one source may contribute (p = 0.9999): no source is infallible


def logit(p: float, limit: float = LIMIT) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return max(-limit, min(limit, math.log(p / (1 - p))))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


@dataclass(frozen=True)
class Evidence:
    source: str  # "rules" | "bayes" | "llm"
    probability: float
    strong: tuple[str, ...] = ()  # strong signs behind it (rules only)
    limit: float = LIMIT
    scale: float = 1.0  # calibration of the source's log-odds (see spam.py) ...
    shift: float = 0.0  # ... and its intercept: log-odds = scale * logit(probability) + shift


@dataclass
class Combined:
    score: float
    log_odds: float
    decided_by: str  # the source that moved the score most toward where it ended
    contributions: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def combine(items: list[Evidence], weights: dict[str, float], unsure: float) -> Combined:
    """The combined score of `items`; `unsure` is the unsure mark (`spam.unsure`): local
    evidence at or above it is not weak (see the module docstring)."""
    parts: dict[str, float] = {}
    local = [e for e in items if e.source != "llm"]
    for e in local:
        weight = weights.get(e.source, 1.0)  # in this order: shift 0 is the old sum, bit for bit
        parts[e.source] = weight * e.scale * logit(e.probability, e.limit) + weight * e.shift
    local_sum = sum(parts.values())
    strong = [s for e in local for s in e.strong]
    notes: list[str] = []
    for e in items:
        if e.source != "llm":
            continue
        said = weights.get("llm", 1.0) * e.scale * logit(e.probability, e.limit)
        if said < 0 and (strong or local_sum >= logit(unsure)):
            why = f"strong signs: {', '.join(strong)}" if strong else "local sources suspect it"
            notes.append(
                f"LLM said {e.probability:.2f} but may not clear this mail ({why}); ignored"
            )
            continue
        parts["llm"] = said
    total = sum(parts.values())
    decided = "none"
    if parts:
        toward = [(abs(v), s) for s, v in parts.items() if (v >= 0) == (total >= 0)]
        decided = max(toward or [(0.0, "none")])[1]
    floor = _strong_floor(local, weights, unsure)
    lowering = [s for s, v in parts.items() if v < 0 and s != "rules"]
    if floor is not None and total < floor and lowering:
        mark = "the unsure mark" if floor >= logit(unsure) else "the rules' own score"
        notes.append(
            f"{' and '.join(lowering)} may not clear a mail with strong signs "
            f"({', '.join(strong)}): kept at {sigmoid(floor):.2f}, {mark}"
        )
        total, decided = floor, "rules"
    return Combined(round(sigmoid(total), 4), total, decided, parts, notes)


def _strong_floor(local: list[Evidence], weights: dict[str, float], unsure: float) -> float | None:
    """The log-odds a mail with strong signs may not be lowered below: the unsure mark, or
    the rules' own score at full weight if that is lower; None without strong signs."""
    said = [
        logit(e.probability, e.limit) for e in local if e.strong and weights.get(e.source, 1.0) > 0
    ]
    return min(logit(unsure), max(said)) if said else None
