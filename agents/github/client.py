"""A PyGithub client, authenticated by token or as a GitHub App installation.

PyGithub's defaults sleep a quarter of a second between requests, a second between writes, and
up to an hour on a rate limit; inside a step with a 30 s timeout that is a hang. Every wait here
comes from `api:` in config/github.yaml and is capped.
"""

from __future__ import annotations

import threading
from typing import Any

from github import Auth, Github, GithubRetry
from urllib3.exceptions import MaxRetryError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from agents.github.settings import ApiSettings, GithubEnv

__all__ = ["BoundedRetry", "GithubClients", "GithubConfigError"]


class GithubConfigError(RuntimeError):
    """GitHub credentials are missing or unusable; the message says which variable to set."""


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


def _retry(api: ApiSettings) -> BoundedRetry | None:
    if api.retries == 0:
        return None
    return BoundedRetry(total=api.retries, max_wait=api.max_retry_wait)


class GithubClients:
    """Builds and caches one `Github` per installation (App) or one for the token."""

    def __init__(self, env: GithubEnv | None = None, api: ApiSettings | None = None) -> None:
        self.env = env or GithubEnv()
        self.api = api or ApiSettings()
        self._lock = threading.Lock()
        self._cache: dict[int | None, Github] = {}

    @property
    def configured(self) -> bool:
        return bool(self.env.token or self.env.uses_app)

    def _kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.env.api_url.rstrip("/"),
            "timeout": self.api.timeout,
            "per_page": self.api.per_page,
            "retry": _retry(self.api),
            "seconds_between_requests": self.api.seconds_between_requests or None,
            "seconds_between_writes": self.api.seconds_between_writes or None,
            "lazy": True,
        }

    def _auth(self, installation_id: int | None) -> Auth.Auth:
        if self.env.uses_app and installation_id is not None:
            path = self.env.app_private_key_file
            assert path is not None
            try:
                key = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise GithubConfigError(
                    f"cannot read GITHUB_APP_PRIVATE_KEY_FILE ({path}): {exc.strerror}"
                ) from None
            app = Auth.AppAuth(str(self.env.app_id), key)
            return Auth.AppInstallationAuth(app, installation_id)
        if self.env.token:
            return Auth.Token(self.env.token.get_secret_value())
        if self.env.uses_app:
            raise GithubConfigError(
                "GitHub App configured but the webhook payload has no installation id; "
                "install the App on the repository, or set GITHUB_TOKEN"
            )
        raise GithubConfigError(
            "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID and "
            "GITHUB_APP_PRIVATE_KEY_FILE"
        )

    def for_installation(self, installation_id: int | None = None) -> Github:
        key = installation_id if self.env.uses_app else None
        with self._lock:
            gh = self._cache.get(key)
            if gh is None:
                gh = self._cache[key] = Github(auth=self._auth(key), **self._kwargs())
            return gh

    def close(self) -> None:
        with self._lock:
            for gh in self._cache.values():
                gh.close()
            self._cache.clear()
