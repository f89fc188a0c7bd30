"""Start-up check for the GitHub flow, called by the runtime through the plugin entry point."""

from __future__ import annotations

import logging

from agents.github.settings import GithubEnv, shared_store

__all__ = ["check", "cli", "name"]

name = "github"
cli = None  # the flow adds no `stepline github ...` commands

log = logging.getLogger("stepline.github")

_OFF = "or turn the flow off with `enabled: false` in config/github.yaml"


def _problems() -> list[str]:
    env = GithubEnv()
    problems = []
    if env.webhook_secret is None or not env.webhook_secret.get_secret_value():
        problems.append(
            "GITHUB_WEBHOOK_SECRET is not set: set it to your webhook's secret, so forged "
            "deliveries are refused"
        )
    if not env.token and not env.app_id:
        problems.append(
            "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID and "
            "GITHUB_APP_PRIVATE_KEY_FILE"
        )
    elif env.app_id and not env.token:
        key = env.app_private_key_file
        if key is None:
            problems.append("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY_FILE is not")
        elif not key.is_file():
            problems.append(f"GITHUB_APP_PRIVATE_KEY_FILE {key} does not exist")
    return problems


def check(settings_mode: str) -> str | None:
    """One line saying what to fix when the flow cannot run safely in `start`, else None.

    In `dev` the same problems are logged as warnings and the flow runs: an unsigned webhook is
    accepted there so it can be tried with curl.
    """
    store = shared_store()
    settings = store.current()
    if store.last_error:
        return f"config/github.yaml is invalid: {store.last_error}"
    if not settings.enabled:
        return None
    problems = _problems()
    if not problems:
        return None
    if settings_mode == "start":
        return f"GitHub flow: {problems[0]}; {_OFF}"
    for problem in problems:
        log.warning("GitHub flow: %s (accepted in dev, refused by `stepline start`)", problem)
    return None
