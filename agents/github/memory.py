"""What a review remembers in state between attempts and between reviews.

- The AI result of one (head, trigger), stored before anything is posted: a step retried after a
  posting failure (a 5xx, a rate limit, a crash) posts that result again and never calls the
  LLM a second time. It is dropped once the review is on GitHub.
- Fingerprints of the findings posted on a pull request, so a later review (new commits, or a
  `/review`) does not repeat what is already there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agents.github.findings import ReviewResult

__all__ = [
    "DRAFTS_GROUP",
    "FINGERPRINTS_GROUP",
    "Draft",
    "drop_draft",
    "load_draft",
    "posted_fingerprints",
    "remember_fingerprints",
    "save_draft",
]

log = logging.getLogger("stepline.github.memory")

DRAFTS_GROUP = "github.review.drafts"  # "<repo>#<n>@<head>:<trigger>" -> Draft
FINGERPRINTS_GROUP = "github.review.posted"  # "<repo>#<n>" -> [fingerprint, ...]
_DRAFT_TTL = 7 * 24 * 3600
_FINGERPRINT_TTL = 180 * 24 * 3600
# A pull request with more posted findings than this forgets its oldest ones first.
_MAX_FINGERPRINTS = 2000


@dataclass
class Draft:
    """The AI side of a review: its merged result (None when it could not run), who made
    it, and what it could not review."""

    result: ReviewResult | None
    reviewer: str
    notes: list[str] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        result = self.result.model_dump() if self.result is not None else None
        return {"result": result, "reviewer": self.reviewer, "notes": self.notes}


async def load_draft(state: Any, key: str) -> Draft | None:
    if state is None:
        return None
    raw = await state.get(DRAFTS_GROUP, key)
    if not isinstance(raw, dict):
        return None
    try:
        result = ReviewResult.model_validate(raw["result"])
    except (KeyError, ValueError):
        log.warning("stored review result for %s is unreadable; reviewing again", key)
        return None
    return Draft(result, str(raw.get("reviewer") or ""), [str(n) for n in raw.get("notes", [])])


async def save_draft(state: Any, key: str, draft: Draft) -> None:
    if state is not None and draft.result is not None:
        await state.set(DRAFTS_GROUP, key, draft.dump(), ttl=_DRAFT_TTL)


async def drop_draft(state: Any, key: str) -> None:
    if state is not None:
        await state.delete(DRAFTS_GROUP, key)


async def posted_fingerprints(state: Any, pr_key: str) -> set[str]:
    if state is None:
        return set()
    return {str(fp) for fp in await state.get(FINGERPRINTS_GROUP, pr_key, []) or []}


async def remember_fingerprints(state: Any, pr_key: str, fingerprints: list[str]) -> None:
    if state is None or not fingerprints:
        return

    known = [str(fp) for fp in await state.get(FINGERPRINTS_GROUP, pr_key, []) or []]
    fresh = [fp for fp in dict.fromkeys(fingerprints) if fp not in set(known)]
    value = (known + fresh)[-_MAX_FINGERPRINTS:]
    await state.set(FINGERPRINTS_GROUP, pr_key, value, ttl=_FINGERPRINT_TTL)
