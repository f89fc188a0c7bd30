"""A PyGithub client, authenticated by token or as a GitHub App installation.

PyGithub's defaults sleep a quarter of a second between requests, a second between writes, and
up to an hour on a rate limit; inside a step with a 30 s timeout that is a hang. Every wait
comes from `api:` in config/github.yaml and is capped (see `agents.github.retry`). Writes are
paced by the runtime, not by sleeps here: every step that writes has a rate limit per
installation (`api.reviews_per_minute` for the review, `api.writes_per_minute` for the merge
steps), and a rate-limit answer becomes `ctx.retry_after` with GitHub's wait
(`paced_by_runtime`), which holds across processes and survives restarts. So PyGithub's own
pause between writes stays off; `api.seconds_between_writes` is ignored, with a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agents.github.settings import ApiSettings, GithubEnv
from app import Permanent

if TYPE_CHECKING:
    from github import Auth, Github

__all__ = ["GithubClients", "GithubConfigError", "github_reason", "github_wait", "paced_by_runtime"]

log = logging.getLogger("stepline.github")


class GithubConfigError(Permanent, RuntimeError):
    """GitHub credentials are missing or unusable; the message says which variable to set.
    Retrying cannot help until the setting is fixed, so the runtime dead-letters at once."""


def github_reason(exc: Any, default: str = "no reason given") -> str:
    """What GitHub said when it refused a call (a `GithubException`): the messages of its
    `errors` (REST validation strings or objects, GraphQL error objects), else its `message`."""
    data = getattr(exc, "data", None)
    if not isinstance(data, dict):
        return default
    errors = [
        e if isinstance(e, str) else e.get("message", str(e)) for e in data.get("errors") or []
    ]
    return "; ".join(str(e) for e in errors) or str(data.get("message") or default)


def github_wait(exc: BaseException) -> float | None:
    """Seconds GitHub asked for when `exc` is a rate-limit refusal (403/429): its Retry-After
    (secondary), else until the quota's reset (primary); None for any other failure."""
    status = getattr(exc, "status", None)
    if status not in (403, 429):
        return None
    wait = getattr(exc, "wait", None)  # RateLimitExceededExceedsMaxWait: already read
    if isinstance(wait, int | float):
        return max(float(wait), 0.0)
    headers = {str(k).lower(): str(v) for k, v in (getattr(exc, "headers", None) or {}).items()}
    after = headers.get("retry-after", "").strip()
    if after.isdigit():
        return float(after)
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(int(reset) - time.time(), 0.0) + 1.0  # whole seconds, clocks apart
    return None


@contextmanager
def paced_by_runtime(ctx: Any) -> Iterator[None]:
    """Turn a GitHub rate-limit refusal inside the block into `ctx.retry_after(wait)`: the
    delivery runs again after GitHub's wait, durably and without counting an attempt."""
    try:
        yield
    except Exception as exc:
        wait = github_wait(exc)
        if wait is None:
            raise
        ctx.retry_after(wait, f"GitHub rate limit ({getattr(exc, 'status', '?')}): {exc}")


class GithubClients:
    """Builds and caches one `Github` per installation (App) or one for the token."""

    def __init__(self, env: GithubEnv | None = None, api: ApiSettings | None = None) -> None:
        self.env = env or GithubEnv()
        self.api = api or ApiSettings()
        if self.api.seconds_between_writes:
            log.warning(
                "api.seconds_between_writes (%g) in config/github.yaml is deprecated and "
                "ignored: GitHub writes are paced by the runtime across processes "
                "(api.reviews_per_minute, api.writes_per_minute); remove it",
                self.api.seconds_between_writes,
            )
        self._lock = threading.Lock()
        self._cache: dict[int | None, Github] = {}
        self._logins: dict[int | None, str] = {}

    @property
    def configured(self) -> bool:
        return bool(self.env.token or self.env.uses_app)

    def _kwargs(self) -> dict[str, Any]:
        from agents.github.retry import bounded_retry

        return {
            "base_url": self.env.api_url.rstrip("/"),
            "timeout": self.api.timeout,
            "per_page": self.api.per_page,
            "retry": bounded_retry(self.api),
            "seconds_between_requests": self.api.seconds_between_requests or None,
            "seconds_between_writes": None,  # paced by the runtime's rate limits instead
            "lazy": True,
        }

    def _app_auth(self) -> Auth.AppAuth:
        from github import Auth

        path = self.env.app_private_key_file
        assert path is not None
        try:
            key = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GithubConfigError(
                f"cannot read GITHUB_APP_PRIVATE_KEY_FILE ({path}): {exc.strerror}"
            ) from None
        return Auth.AppAuth(str(self.env.app_id), key)

    def _auth(self, installation_id: int | None) -> Auth.Auth:
        from github import Auth

        if self.env.uses_app and installation_id is not None:
            return Auth.AppInstallationAuth(self._app_auth(), installation_id)
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
        # PyGithub is imported on first use: loading the steps and idling never need it.
        from github import Github

        key = installation_id if self.env.uses_app else None
        with self._lock:
            gh = self._cache.get(key)
            if gh is None:
                gh = self._cache[key] = Github(auth=self._auth(key), **self._kwargs())
            return gh

    def login(self, installation_id: int | None = None) -> str:
        """The login this client posts as (`<app-slug>[bot]` for an App), asked once.

        Anyone can review a public pull request, so the hidden markers a review is found again
        by are trusted only in this account's own reviews and comments. Blocking (PyGithub)."""
        key = installation_id if self.env.uses_app else None
        with self._lock:
            known = self._logins.get(key)
        if known is not None:
            return known
        if key is None:
            from github import GithubException

            try:
                login = str(self.for_installation(None).get_user().login)
            except GithubException as exc:
                if exc.status not in (401, 403):
                    raise
                # An installation's token (GitHub Actions') cannot read /user: `viewer` names it.
                login = _viewer_login(self.for_installation(None)) if exc.status == 403 else ""
                if not login:
                    raise GithubConfigError(
                        f"GitHub answered {exc.status} to GET /user with GITHUB_TOKEN "
                        f"({github_reason(exc)}){', nor GraphQL viewer' * (exc.status == 403)}: "
                        "use a personal access token (classic or fine-grained), or a GitHub "
                        "App (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE)"
                    ) from None
        else:
            # An installation token cannot read /user; the App's own JWT reads /app.
            from github import GithubIntegration

            app = GithubIntegration(auth=self._app_auth(), **self._kwargs())
            login = f"{app.get_app().slug}[bot]"
        with self._lock:
            self._logins[key] = login
        return login

    def close(self) -> None:
        with self._lock:
            for gh in self._cache.values():
                gh.close()
            self._cache.clear()


def _viewer_login(gh: Any) -> str:
    """GraphQL's `{ viewer { login } }`, which an installation token may read; "" if refused."""
    from github import GithubException

    try:
        _, data = gh.requester.graphql_query("query { viewer { login } }", {})
    except GithubException:
        return ""
    viewer = (data.get("data") or {}).get("viewer") or {}
    return str(viewer.get("login") or "")
