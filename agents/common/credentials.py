"""Credentials both flows use, checked with the service at `stepline start`.

Slack carries notifications for the GitHub and the Gmail flow alike, so its token is asked
about here (`auth.test`), and each flow's `verify()` includes the answer. The runtime lists a
problem shared by several flows once; what Slack answered is logged, so an accepted token says
whose it is.
"""

from __future__ import annotations

import logging

from agents.notify.settings import NotifySettings

__all__ = ["slack_problems"]

log = logging.getLogger("stepline.notify")

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
    if not isinstance(body, dict):
        body = {}
    error = body.get("error")
    if body.get("ok") is True:
        who = f"user {body.get('user') or '?'} in team {body.get('team') or '?'}"
        log.info("SLACK_BOT_TOKEN accepted: auth.test answered ok (%s)", who)
    elif error in _REJECTED:
        return [
            f"Slack rejected SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token "
            "(xoxb-...) again from the app's OAuth & Permissions page"
        ]
    else:  # a passing answer such as `ratelimited`: the token may well be fine
        log.warning(
            "SLACK_BOT_TOKEN not confirmed: auth.test answered HTTP %s (%s); starting anyway",
            answer.status_code,
            error or "no error named",
        )
    return []
