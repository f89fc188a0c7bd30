"""Retry rules for PyGithub with every wait capped.

GitHub has two kinds of rate limit, told apart by their headers:

- primary (the hourly quota): 403/429 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`
  (epoch seconds), no `Retry-After`; retrying before the reset only meets the same refusal;
- secondary (abuse protection): 403/429 with `Retry-After` (seconds).

Neither is slept through here: each fails the call at once with
`RateLimitExceededExceedsMaxWait` carrying GitHub's wait (a primary limit's until its reset),
which the step hands to the runtime (`agents.github.client.paced_by_runtime` ->
`ctx.retry_after`), so the delivery is re-scheduled durably, without an attempt counted and
without a handler holding its worker while it sleeps, however short the wait.

Kept apart from `agents.github.client` because subclassing `GithubRetry` needs PyGithub at
import time; the client imports this module only when it builds its first `Github`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from github import GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from urllib3.response import BaseHTTPResponse, HTTPResponse
from urllib3.util.retry import Retry

from agents.github.settings import ApiSettings

__all__ = ["BoundedRetry", "bounded_retry"]


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RATE_LIMIT_STATUSES = frozenset({403, 429})
# The reset is given in whole seconds and the two clocks differ a little; a run that still
# comes too early meets the same refusal and is re-scheduled again.
_RESET_MARGIN = 0.25


class BoundedRetry(GithubRetry):
    """GitHub's retry rules (rate limits on 403/429, 5xx) with every sleep capped."""

    def __init__(self, *, max_wait: float = 10.0, **kwargs: Any) -> None:
        self.max_wait = max_wait
        kwargs.setdefault("secondary_rate_wait", max_wait)
        kwargs.setdefault("max_rate_limit_wait", max_wait)
        kwargs.setdefault("backoff_factor", 0.1)
        kwargs.setdefault("backoff_max", max_wait)
        status = [*range(500, 600), 429]
        kwargs.setdefault("status_forcelist", status)
        # Give PyGithub the last answer so it raises its own exception, not urllib3's.
        kwargs.setdefault("raise_on_status", False)
        super().__init__(**kwargs)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # A write that failed with 5xx may have happened: retrying could post a review twice.
        # Rate limits (403/429) are refused before any work, so those are safe to repeat.
        if method.upper() in _WRITES and status_code >= 500:
            return False
        return super().is_retry(method, status_code, has_retry_after)

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("max_wait", self.max_wait)
        return super().new(**kw)

    # Narrowed to the HTTPResponse urllib3 passes, as GithubRetry itself narrows it.
    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: HTTPResponse | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Retry:
        if response is None or response.status not in _RATE_LIMIT_STATUSES:
            return super().increment(method, url, response, *args, **kwargs)
        retry_after = Retry.get_retry_after(self, response)
        if retry_after is not None:
            raise self._too_long(response, url, retry_after, "secondary rate limit")
        reset_in = _primary_reset_in(response)
        if reset_in is None:
            # Neither kind by its headers: PyGithub reads the body (or raises a plain 403).
            return super().increment(method, url, response, *args, **kwargs)
        wait = max(reset_in, 0.0) + _RESET_MARGIN
        raise self._too_long(response, url, wait, "API rate limit (quota used up)")

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), self.max_wait)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.max_wait)

    def _too_long(
        self, response: BaseHTTPResponse, url: str | None, wait: float, kind: str
    ) -> RateLimitExceededExceedsMaxWait:
        path = (url or "").split("?", 1)[0]
        message = (
            f"GitHub {kind} on {path or 'a request'}: retry in {wait:.0f} s; not waiting in "
            "the handler, the step is run again later"
        )
        data = _body(response, url)
        headers = dict(response.headers.items())
        return RateLimitExceededExceedsMaxWait(
            response.status, data, headers, message=message, wait=wait
        )


def _primary_reset_in(response: BaseHTTPResponse) -> float | None:
    """Seconds until the quota resets when this answer is a primary limit, else None."""
    headers = response.headers
    remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
    if remaining != "0" or reset is None or not reset.isdigit():
        return None
    return int(reset) - time.time()


def _body(response: BaseHTTPResponse, url: str | None) -> Any:
    try:
        raw = GithubRetry.get_content(response, url or "")  # type: ignore[arg-type]
        return json.loads(raw or b"null")
    except Exception:  # the status and message already say what happened
        return None


def bounded_retry(api: ApiSettings) -> BoundedRetry | None:
    """The retry for `api:` settings, or None when retries are off."""
    if api.retries == 0:
        return None
    return BoundedRetry(total=api.retries, max_wait=api.max_retry_wait)
