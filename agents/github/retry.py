"""Retry rules for PyGithub with every wait capped.

Kept apart from `agents.github.client` because subclassing `GithubRetry` needs PyGithub at
import time; the client imports this module only when it builds its first `Github`.
"""

from __future__ import annotations

from typing import Any

from github import GithubRetry
from urllib3.exceptions import MaxRetryError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from agents.github.settings import ApiSettings

__all__ = ["BoundedRetry", "bounded_retry"]


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BoundedRetry(GithubRetry):
    """GitHub's retry rules (403 with Retry-After, 429, 5xx) with every sleep capped."""

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
        return super().new(**kw)  # type: ignore[return-value]

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Retry:
        # A wait longer than the cap fails this attempt now; the step's own retry (with
        # backoff) comes back later, instead of a handler sleeping through its timeout.
        if response is not None:
            wait = Retry.get_retry_after(self, response)
            if wait is not None and wait > self.max_wait:
                raise MaxRetryError(kwargs.get("_pool"), url or "", None)  # type: ignore[arg-type]
        return super().increment(method, url, response, *args, **kwargs)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.max_wait)


def bounded_retry(api: ApiSettings) -> BoundedRetry | None:
    """The retry for `api:` settings, or None when retries are off."""
    if api.retries == 0:
        return None
    return BoundedRetry(total=api.retries, max_wait=api.max_retry_wait)
