"""The Gmail flow as a Stepline plugin: its CLI (`stepline gmail`), what it reports about
its own configuration at start-up, and (`ready`) a grant Google refused while it runs.

Entry point in pyproject.toml, group "stepline.plugins": gmail = "agents.gmail.plugin"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.common.credentials import slack_problems
from agents.gmail import grant
from agents.gmail.env import gmail_env
from agents.gmail.oauth import credentials_file, token_file
from agents.gmail.settings import config_path, settings_file
from app.plugins import FlowStatus

__all__ = ["name", "outputs", "ready", "status", "verify"]  # and `cli`, loaded when asked for

name = "gmail"
# Mail judged spam is announced for users' own steps (a digest, an audit log).
outputs = ["gmail.spam.detected"]

_TURN_ON = (
    "run `stepline gmail connect` (with GMAIL_CREDENTIALS_FILE pointing at your OAuth "
    "client JSON) to turn it on"
)
# google-auth refuses a stored grant without these (Credentials.from_authorized_user_info).
_GRANT_KEYS = ("refresh_token", "client_id", "client_secret")


def __getattr__(attr: str) -> Any:
    # `stepline gmail ...` is mounted only for a command that is not built in: a server that
    # merely asks the flow's status need not load its CLI.
    if attr == "cli":
        from agents.gmail.cli import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def status() -> FlowStatus:
    path = config_path()
    problems: list[str] = []
    enabled: bool | None = None
    push_mode = False
    try:
        settings = settings_file().load_strict()
    except ValueError as exc:
        problems.append(str(exc))
    else:
        enabled = settings.enabled if "enabled" in settings.model_fields_set else None
        push_mode = settings.mode == "push"
        if push_mode:
            missing = [k for k in ("topic", "audience") if not getattr(settings.push, k)]
            if missing:
                keys = " and ".join(f"push.{k}" for k in missing)
                problems.append(f"push mode needs {keys} in {path} (or use `mode: polling`)")
    token = token_file()
    client = credentials_file()
    client_named = "credentials_file" in gmail_env().model_fields_set  # .env counts too
    if token.exists():
        problems += _grant_problems(token)
    else:
        problems.append(f"Gmail is not connected ({token} missing): run `stepline gmail connect`")
        if client_named and not client.is_file():
            problems.append(
                f"GMAIL_CREDENTIALS_FILE {client} does not exist: download the "
                "OAuth client JSON from Google Cloud"
            )
    configured = token.exists() or client_named or client.is_file() or push_mode
    return FlowStatus(enabled=enabled, configured=configured, problems=problems, turn_on=_TURN_ON)


def verify() -> list[str]:
    """Ask Slack whether its token works (the Gmail API itself is asked on the first poll)."""
    return slack_problems()


async def ready(state: Any) -> list[str]:
    """What stops the flow while it runs: a grant Google refused, as its sync recorded it
    (until the token file is written again by `stepline gmail connect`)."""
    if state is None:
        return []
    record = await grant.load(state)
    return [grant.describe(record)] if record is not None and grant.applies(record) else []


def _grant_problems(path: Path) -> list[str]:
    try:
        grant = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [
            f"the Gmail token {path} cannot be read ({type(exc).__name__}): run "
            "`stepline gmail connect` again"
        ]
    missing = [k for k in _GRANT_KEYS if not isinstance(grant, dict) or not grant.get(k)]
    if missing:
        return [
            f"the Gmail token {path} lacks {', '.join(missing)}: run `stepline gmail connect` again"
        ]
    return []
