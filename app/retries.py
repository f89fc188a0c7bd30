"""Retry policy: what a failed run of a delivery becomes.

A plain exception is retried with exponential backoff and jitter until the step's `retries`
attempts are used up, then dead-lettered. A handler (or an integration it calls) can say more:

- `raise Permanent(reason)`: another attempt cannot help (bad input, a misconfiguration):
  dead-letter at once, with the reason.
- `raise Retry(delay=seconds, reason=...)`: the provider said "later" (a `Retry-After`): run
  again after `delay` without using up an attempt, while its first run is less than
  `STEPLINE_RETRY_WINDOW` ago (a day by default); past that a `Retry` counts as a failed
  attempt. The window starts at the first run, not at the emit: a delivery emitted with a
  delay of days, or one that waited long behind its key, has not asked anyone yet.
"""

from __future__ import annotations

import math
import random
import time
import traceback

from app.errors import SteplineError
from app.redact import redact_text
from app.schedule import LATEST_DUE
from app.settings import Settings
from app.types import Delivery, Outcome

__all__ = ["Permanent", "Retry", "backoff", "failure_outcome"]


class Permanent(SteplineError):
    """A failure another attempt cannot fix: the delivery is dead-lettered at once.

    Say what is wrong and how to fix it: the reason is shown with the dead letter."""

    def __init__(self, reason: str = "permanent failure") -> None:
        self.reason = reason
        super().__init__(reason)


class Retry(SteplineError):
    """Run the delivery again after `delay` seconds (default: the usual backoff), without
    counting this run against the step's `retries` (see the module docstring for the bound)."""

    def __init__(self, delay: float | None = None, reason: str = "asked to retry") -> None:
        # An int is finite; one past float's range (10**400) makes isfinite raise.
        finite = delay is None or isinstance(delay, int) or math.isfinite(delay)
        if delay is not None and (not finite or delay < 0):
            raise ValueError(f"Retry(delay=...) must be a finite number >= 0, not {delay!r}")
        if delay is not None and delay > LATEST_DUE - time.time():
            # As for a delayed emit: a due time past datetime's range reads as none at all
            # (waiting for a key it does not have, NaN in the Workbench), so say the most here.
            raise ValueError(
                f"Retry(delay={delay!r}) is past the end of the year 9999, the latest a due time "
                f"can be: at most {LATEST_DUE - time.time():.0f} seconds from now"
            )
        self.delay = delay
        self.reason = reason
        when = f" in {delay:g} s" if delay is not None else ""
        super().__init__(f"{reason} (retry{when})")


def backoff(attempt: int, settings: Settings) -> float:
    """Delay before attempt `attempt + 1`: base * 2^(attempt-1), jittered into [50%, 100%]."""
    delay = min(settings.retry_max, settings.retry_base * (2 ** max(attempt - 1, 0)))
    return delay * (0.5 + random.random() / 2)


def failure_outcome(
    delivery: Delivery,
    max_attempts: int,
    exc: BaseException,
    settings: Settings,
    now: float | None = None,
) -> Outcome:
    """The outcome of a run of `delivery` that raised `exc`."""
    now = time.time() if now is None else now
    # Masked before they are stored: dead letters and spans are read back in many places.
    error = redact_text(f"{type(exc).__name__}: {exc}")
    tb = redact_text("".join(traceback.format_exception(exc)))
    first = delivery.first_run if delivery.first_run is not None else now
    if isinstance(exc, Retry) and now - first < settings.retry_window:
        delay = exc.delay if exc.delay is not None else backoff(delivery.attempt, settings)
        # The backend stores one less than the claimed attempt and the next claim adds one:
        # that is what "not counted" means. The delivery keeps its claimed attempt, by which
        # the backend tells this run's outcome from a stale one's.
        return Outcome(
            delivery, "retry", retry_at=now + delay, error=error, traceback=tb, uncounted=True
        )
    if isinstance(exc, Permanent) or delivery.attempt >= max_attempts:
        return Outcome(delivery, "dead", error=error, traceback=tb)
    return Outcome(
        delivery,
        "retry",
        retry_at=now + backoff(delivery.attempt, settings),
        error=error,
        traceback=tb,
    )
