"""Per-call usage: one log line each and daily counters in state for reports.

Besides calls and tokens, the day's `estimated_prompt_tokens` sums our offline estimate of the
prompts the server counted in `prompt_tokens`: their ratio checks the estimate's calibration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from agents.llm.state import StateLike
from app.metrics import count_llm_call

__all__ = ["USAGE_GROUP", "Usage", "record_usage"]

USAGE_GROUP = "llm.usage"

logger = logging.getLogger("agents.llm")


@dataclass(frozen=True)
class Usage:
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ok: bool = True
    # Our own estimate of the same prompt, so `prompt_tokens / estimated_prompt_tokens` shows
    # how well the offline estimate fits the server's tokenizer.
    estimated_prompt_tokens: int = 0


async def record_usage(usage: Usage, state: StateLike | None, today: str | None = None) -> None:
    """Log `usage` and, with a state, add it to the day's counters (keys `<date>:<counter>`)."""
    logger.info(
        "llm call model=%s prompt_tokens=%d estimated_prompt_tokens=%d completion_tokens=%d "
        "latency_ms=%.0f ok=%s",
        usage.model,
        usage.prompt_tokens,
        usage.estimated_prompt_tokens,
        usage.completion_tokens,
        usage.latency_ms,
        usage.ok,
    )
    count_llm_call(
        usage.model, "ok" if usage.ok else "failed", usage.prompt_tokens, usage.completion_tokens
    )
    if state is None:
        return
    day = today or datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        await state.increment(USAGE_GROUP, f"{day}:calls", 1)
        await state.increment(USAGE_GROUP, f"{day}:prompt_tokens", usage.prompt_tokens)
        await state.increment(USAGE_GROUP, f"{day}:completion_tokens", usage.completion_tokens)
        if usage.prompt_tokens and usage.estimated_prompt_tokens:
            # Counted only beside a server figure, so the two sums stay comparable.
            await state.increment(
                USAGE_GROUP, f"{day}:estimated_prompt_tokens", usage.estimated_prompt_tokens
            )
        if not usage.ok:
            await state.increment(USAGE_GROUP, f"{day}:failures", 1)
    except Exception as exc:
        # Counters feed reports only; losing one must not fail the review or triage it measures.
        logger.warning("llm usage not recorded in state: %s", type(exc).__name__)
