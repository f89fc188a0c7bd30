"""A provider's "later" (429 with Retry-After) becomes the runtime's `Retry`, not a sleep.

The `openai` client retries a 429 by sleeping, inside the handler, for the delay the server
advises (up to a minute). A 429 that says when to come back is not retried by the client here:
the call raises `LLMRateLimited`, a `Retry(delay)`, so the runtime re-schedules the delivery
durably after that delay, without counting an attempt, and the worker's slot is free meanwhile.
It is not an `LLMError`, so callers that fall back to their rules on an LLM failure let it pass
to the runtime. A 429 without a delay (an exhausted quota, say) keeps the client's short backoff
and then ends as an `LLMError`, as before.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

from app import Retry

__all__ = ["LLMRateLimited", "paced_client_class", "retry_after"]


class LLMRateLimited(Retry):
    """The LLM server answered 429 with the delay to wait: run the delivery again then."""


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a 429's headers ask to wait (`retry-after-ms`, `retry-after` in seconds or as
    an HTTP date), or None when they do not say."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    date = headers.get("retry-after")
    try:
        parsed = email.utils.parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):  # neither a number nor a date: it does not say
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return max(parsed.timestamp() - (time.time() if now is None else now), 0.0)


_paced: Any = None


def paced_client_class() -> Any:
    """`openai.AsyncOpenAI` that leaves a 429 with a delay to the runtime (built on first use:
    the openai package is imported only when the first call is made)."""
    global _paced
    if _paced is None:
        import openai

        class PacedAsyncOpenAI(openai.AsyncOpenAI):
            def _should_retry(self, response: Any) -> bool:
                if response.status_code == 429 and retry_after(response.headers) is not None:
                    return False
                return bool(super()._should_retry(response))

        _paced = PacedAsyncOpenAI
    return _paced
