"""Retry policy: exponential backoff with jitter, then the dead-letter list."""

from __future__ import annotations

import random
import time
import traceback

from app.redact import redact_text
from app.settings import Settings
from app.types import Delivery, Outcome

__all__ = ["Permanent", "backoff", "failure_outcome"]


class Permanent(Exception):
    """A failure that another attempt cannot fix (bad input): dead-letter at once."""


def backoff(attempt: int, settings: Settings) -> float:
    """Delay before attempt `attempt + 1`: base * 2^(attempt-1), jittered into [50%, 100%]."""
    delay = min(settings.retry_max, settings.retry_base * (2 ** max(attempt - 1, 0)))
    return delay * (0.5 + random.random() / 2)


def failure_outcome(delivery: Delivery, max_attempts: int, exc: BaseException,
                    settings: Settings) -> Outcome:
    # Masked before they are stored: dead letters and spans are read back in many places.
    error = redact_text(f"{type(exc).__name__}: {exc}")
    tb = redact_text("".join(traceback.format_exception(exc)))
    if isinstance(exc, Permanent) or delivery.attempt >= max_attempts:
        return Outcome(delivery, "dead", error=error, traceback=tb)
    return Outcome(delivery, "retry", retry_at=time.time() + backoff(delivery.attempt, settings),
                   error=error, traceback=tb)
