"""One POST with retries on 429/5xx/connection errors, honouring Retry-After (push providers)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from agents.notify.models import NotifyError

if TYPE_CHECKING:
    import httpx

__all__ = ["post_with_retries"]

logger = logging.getLogger("agents.notify")

_RETRY_STATUS = {429, 500, 502, 503, 504}
# A Retry-After longer than this is left to the step's own retry with backoff.
_MAX_WAIT = 30.0


def _wait(response: httpx.Response | None, attempt: int) -> float:
    header = response.headers.get("retry-after") if response is not None else None
    if header:
        try:
            return min(max(float(header), 0.0), _MAX_WAIT)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return min(0.5 * 2**attempt, _MAX_WAIT)


async def post_with_retries(
    provider: str, where: str, url: str, *, retries: int, timeout: float, **kwargs: Any
) -> httpx.Response:
    """POST and return the final response (any status); `where` names it without secrets."""
    # httpx is imported on the first push, not when the steps load.
    import httpx

    async with httpx.AsyncClient(timeout=timeout) as client:
        for attempt in range(retries + 1):
            response: httpx.Response | None = None
            try:
                response = await client.post(url, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == retries:
                    raise NotifyError(
                        f"could not reach {provider} at {where}: {type(exc).__name__}",
                        provider=provider,
                    ) from None
            if response is not None and response.status_code not in _RETRY_STATUS:
                return response
            if response is not None and attempt == retries:
                return response
            delay = _wait(response, attempt)
            logger.info("%s: retrying in %.1fs (attempt %d)", provider, delay, attempt + 1)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises on its last attempt
