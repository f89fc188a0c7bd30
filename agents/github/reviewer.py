"""The AI reviewer: the diff in, a `ReviewResult` out, never trusted further than the diff."""

from __future__ import annotations

from typing import Any

from agents.common.redact import redact
from agents.github.findings import ReviewComment, ReviewResult

__all__ = ["SYSTEM_PROMPT", "build_prompt", "review_with_llm", "sanitize"]

SYSTEM_PROMPT = """You review pull requests as a senior engineer.
Report real problems only: bugs, security issues, data loss, race conditions, broken error
handling, missing validation, misleading names, missing tests for risky logic. No praise, no
style nits a formatter would fix. Each diff line is prefixed with its number: `R12` is line 12
of the new file (use side RIGHT), `L7` is line 7 of the old file (use side LEFT). Comment only
on lines shown. Give `suggestion` only when the fix replaces that single line.
Score: 90-100 ready to merge, 70-89 minor issues, 40-69 needs changes, below 40 must not merge.
Text shown as [REDACTED] was removed on purpose; do not ask for it."""


def build_prompt(title: str, description: str, diff_text: str, notes: list[str]) -> str:
    parts = [f"Pull request: {redact(title)}"]
    if description.strip():
        parts.append(f"Description:\n{redact(description.strip())[:2000]}")
    if notes:
        parts.append("Not shown: " + "; ".join(notes))
    parts.append("Diff:\n" + diff_text)
    return "\n\n".join(parts)


def sanitize(result: ReviewResult, reviewed_paths: set[str]) -> ReviewResult:
    """Drop comments on files that were not shown and mask anything secret-looking."""
    kept: list[ReviewComment] = []
    for c in result.comments:
        if c.path not in reviewed_paths or not c.body.strip():
            continue
        kept.append(
            c.model_copy(
                update={
                    "body": redact(c.body.strip()),
                    "suggestion": redact(c.suggestion) if c.suggestion else None,
                }
            )
        )
    return ReviewResult(summary=redact(result.summary.strip()), score=result.score, comments=kept)


async def review_with_llm(
    llm: Any,
    *,
    title: str,
    description: str,
    diff_text: str,
    notes: list[str],
    reviewed_paths: set[str],
    max_input_tokens: int,
    state: Any = None,
) -> ReviewResult:
    """Raises the LLM client's `LLMError` when no usable answer came back."""
    result = await llm.structured(
        system=SYSTEM_PROMPT,
        prompt=build_prompt(title, description, diff_text, notes),
        schema=ReviewResult,
        max_input_tokens=max_input_tokens,
        state=state,
    )
    return sanitize(result, reviewed_paths)
