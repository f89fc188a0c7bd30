"""The GitHub flow as seen by the runtime: what is configured, what is wrong, and whether
GitHub accepts the token. Loaded through the `stepline.plugins` entry point."""

from __future__ import annotations

import logging
import time
from typing import Any

from agents.common.credentials import slack_problems
from agents.github.settings import GithubEnv, shared_store
from app.plugins import FlowStatus

__all__ = ["cli", "name", "outputs", "status", "verify"]

name = "github"
cli = None  # the flow adds no `stepline github ...` commands
# The daily report is published for users' own steps (a dashboard, an archive) to pick up.
outputs = ["github.report.generated"]

log = logging.getLogger("stepline.github")

_TURN_ON = (
    "set GITHUB_WEBHOOK_SECRET and GITHUB_TOKEN (or GITHUB_APP_ID and "
    "GITHUB_APP_PRIVATE_KEY_FILE) to turn it on"
)


def status() -> FlowStatus:
    store = shared_store()
    settings = store.current()
    enabled = settings.enabled if "enabled" in settings.model_fields_set else None
    env = GithubEnv()
    secret = env.webhook_secret is not None and bool(env.webhook_secret.get_secret_value())
    token = env.token is not None and bool(env.token.get_secret_value())
    problems = []
    if store.last_error:
        problems.append(f"{store.path} is invalid: {store.last_error}")
    if not secret:
        problems.append(
            "GITHUB_WEBHOOK_SECRET is not set: set it to your webhook's secret, "
            "so forged deliveries are refused"
        )
    if not token and not env.app_id and not env.app_private_key_file:
        problems.append(
            "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID and "
            "GITHUB_APP_PRIVATE_KEY_FILE"
        )
    elif not token:
        key = env.app_private_key_file
        if not env.app_id:
            problems.append("GITHUB_APP_PRIVATE_KEY_FILE is set but GITHUB_APP_ID is not")
        if key is None:
            problems.append("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY_FILE is not")
        elif not key.is_file():
            problems.append(f"GITHUB_APP_PRIVATE_KEY_FILE {key} does not exist")
        elif b"PRIVATE KEY-----" not in key.read_bytes()[:4096]:
            problems.append(
                f"GITHUB_APP_PRIVATE_KEY_FILE {key} is not a PEM private key "
                "(download it again from the App's settings)"
            )
    configured = secret or token or bool(env.app_id) or env.app_private_key_file is not None
    return FlowStatus(enabled=enabled, configured=configured, problems=problems, turn_on=_TURN_ON)


def verify() -> list[str]:
    """Ask GitHub whether the token works, and Slack whether its token does; an App key is
    checked when it is used. What was asked, and GitHub's answers, are logged."""
    return _github_problems() + slack_problems()


def _github_problems() -> list[str]:
    env = GithubEnv()
    if env.token is None:
        return []
    import httpx  # only when asked: an idle server need not hold it

    headers = {
        "authorization": f"Bearer {env.token.get_secret_value()}",
        "accept": "application/vnd.github+json",
    }
    try:
        with httpx.Client(timeout=10, headers=headers) as http:
            problems, checked = _check_token(http, env.api_url.rstrip("/"))
    except httpx.HTTPError as exc:
        return [
            f"cannot reach GitHub at {env.api_url} to check GITHUB_TOKEN "
            f"({type(exc).__name__}); start with --no-verify to skip the check"
        ]
    if problems:
        return problems
    log.info("GITHUB_TOKEN accepted: %s", "; ".join(checked))
    return []


def _check_token(http: Any, api: str) -> tuple[list[str], list[str]]:
    """(problems, what was asked with GitHub's answers). Only a 401 ("Bad credentials") says
    the token is wrong: an installation's token (GitHub Actions' GITHUB_TOKEN) answers 403 to
    GET /user, and a used-up quota answers 403 too, yet the token works."""
    user = http.get(f"{api}/user")
    if user.status_code == 200:
        return [], [f"GET /user answered 200 (posts as {_field(user, 'login')})"]
    checked = [f"GET /user answered {user.status_code} ({_message(user)})"]
    if user.status_code != 401:
        # Answered for any valid token, and not counted against the quota.
        limit = http.get(f"{api}/rate_limit")
        checked.append(f"GET /rate_limit answered {limit.status_code}")
        if limit.status_code != 401 and user.headers.get("x-ratelimit-remaining") == "0":
            # The quota, not the token: who it posts as is asked again when a review runs.
            reset = time.strftime("%H:%M:%S UTC", time.gmtime(_reset(user)))
            return [], [*checked, f"the quota is used up until {reset}"]
        if limit.status_code != 401:
            return [], checked + _who(http, api, proven=limit.status_code == 200)
    return [
        f"GitHub rejected GITHUB_TOKEN as invalid ({'; '.join(checked)}): the token is "
        "wrong, expired or revoked; create a new one and set it again, or start with "
        "--no-verify to skip this check"
    ], checked


def _who(http: Any, api: str, *, proven: bool) -> list[str]:
    """Which account a token that cannot read /user posts as: the review needs it."""
    checked = [] if proven else ["GitHub did not say the token is invalid"]
    repos = http.get(f"{api}/installation/repositories", params={"per_page": 1})
    if repos.status_code == 200:
        count = _field(repos, "total_count")
        checked.append(f"an installation token (GET /installation/repositories: {count})")
    # GitHub Enterprise Server serves GraphQL at /api/graphql beside /api/v3.
    graphql = api.removesuffix("/v3") + "/graphql" if api.endswith("/api/v3") else api + "/graphql"
    viewer = http.post(graphql, json={"query": "query { viewer { login } }"})
    data = _field(viewer, "data")
    viewed = data.get("viewer") if isinstance(data, dict) else None
    login = viewed.get("login") if isinstance(viewed, dict) else None
    if viewer.status_code == 200 and isinstance(login, str):
        checked.append(f"GraphQL viewer answered 200 (posts as {login})")
    else:
        checked.append(f"GraphQL viewer answered {viewer.status_code} ({_message(viewer)})")
        log.warning(
            "GITHUB_TOKEN works but GitHub does not say which account it posts as (%s): "
            "reviews will stop until it does; use a personal access token or a GitHub App",
            "; ".join(checked),
        )
    return checked


def _reset(answer: Any) -> float:
    try:
        return float(answer.headers.get("x-ratelimit-reset", ""))
    except ValueError:
        return time.time()


def _field(answer: Any, name: str) -> Any:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _message(answer: Any) -> str:
    """GitHub's own words for a refusal, short (it never quotes the token)."""
    errors = _field(answer, "errors")  # GraphQL refuses inside a 200
    first = errors[0] if isinstance(errors, list) and errors else None
    message = first.get("message") if isinstance(first, dict) else _field(answer, "message")
    return str(message)[:200] if message else answer.reason_phrase or "no reason given"
