"""The GitHub flow as seen by the runtime: what is configured, what is wrong, and whether
GitHub accepts the token. Loaded through the `stepline.plugins` entry point."""

from __future__ import annotations

from agents.common.credentials import slack_problems
from agents.github.settings import GithubEnv, shared_store
from app.plugins import FlowStatus

__all__ = ["cli", "name", "outputs", "status", "verify"]

name = "github"
cli = None  # the flow adds no `stepline github ...` commands
# The daily report is published for users' own steps (a dashboard, an archive) to pick up.
outputs = ["github.report.generated"]

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
    """Ask GitHub whether the token works (`GET /user`), and Slack whether its token does;
    an App key is checked when it is used."""
    return _github_problems() + slack_problems()


def _github_problems() -> list[str]:
    env = GithubEnv()
    if env.token is None:
        return []
    import httpx  # only when asked: an idle server need not hold it

    try:
        answer = httpx.get(
            f"{env.api_url.rstrip('/')}/user",
            timeout=10,
            headers={
                "authorization": f"Bearer {env.token.get_secret_value()}",
                "accept": "application/vnd.github+json",
            },
        )
    except httpx.HTTPError as exc:
        return [
            f"cannot reach GitHub at {env.api_url} to check GITHUB_TOKEN "
            f"({type(exc).__name__}); start with --no-verify to skip the check"
        ]
    # Only a 401 says the token is bad; a 403 or 404 here can be a token without the `user`
    # scope or a GitHub Enterprise quirk, and the flow may still work.
    if answer.status_code == 401:
        return [
            "GitHub rejected GITHUB_TOKEN (401 Bad credentials): create a new token and "
            "set it again, or start with --no-verify to skip this check"
        ]
    return []
