"""Credentials both flows use, checked with the service at `stepline start`.

Slack carries notifications for the GitHub and the Gmail flow alike, so its token is asked
about here once (`auth.test`), and each flow's `verify()` includes the answer. The runtime
lists a problem shared by several flows once.
"""

from __future__ import annotations

from agents.notify.settings import NotifySettings

__all__ = ["slack_problems"]

# Answers of auth.test that mean the token itself is wrong (not a passing outage).
_REJECTED = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
}


def slack_problems() -> list[str]:
    """Why Slack would refuse SLACK_BOT_TOKEN, as one-line problems; [] when unset or fine."""
    settings = NotifySettings()
    if settings.slack_bot_token is None:
        return []
    import httpx  # only when asked: with rich and pygments it is ~2.5 MiB of an idle server

    url = settings.slack_api_url.rstrip("/") + "/auth.test"
    try:
        answer = httpx.post(
            url,
            timeout=settings.timeout,
            headers={"authorization": f"Bearer {settings.slack_bot_token.get_secret_value()}"},
        )
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        return [
            f"cannot reach Slack at {settings.slack_api_url} to check SLACK_BOT_TOKEN "
            f"({type(exc).__name__}); start with --no-verify to skip the check"
        ]
    error = body.get("error") if isinstance(body, dict) and not body.get("ok") else None
    if error in _REJECTED:
        return [
            f"Slack rejected SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token "
            "(xoxb-...) again from the app's OAuth & Permissions page"
        ]
    return []
