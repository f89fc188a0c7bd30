"""The Gmail flow as a Stepline plugin: its CLI (`stepline gmail`) and its start-up check.

Entry point in pyproject.toml, group "stepline.plugins": gmail = "agents.gmail.plugin"
"""

from __future__ import annotations

import logging

from agents.gmail.cli import app as cli
from agents.gmail.oauth import token_file
from agents.gmail.settings import config_path, settings_file

__all__ = ["check", "cli", "name"]

name = "gmail"
log = logging.getLogger("stepline.gmail")

_OFF = "set `enabled: false` in config/gmail.yaml to turn the Gmail flow off"


def check(mode: str) -> str | None:
    """In `start`: a one-line reason the Gmail flow cannot run, or None. In other modes the
    problem is logged as a warning and the app starts anyway. Without config/gmail.yaml the
    flow is not in use and nothing is checked."""
    problem = _problem()
    if problem and mode != "start":
        log.warning("Gmail flow: %s (tolerated outside `stepline start`)", problem)
        return None
    return problem


def _problem() -> str | None:
    path = config_path()
    if not path.exists():
        return None
    try:
        settings = settings_file().load_strict()
    except ValueError as exc:
        return str(exc)
    if not settings.enabled:
        return None
    if not token_file().exists():
        return (
            f"Gmail is not connected ({token_file()} missing): "
            f"run `stepline gmail connect`, or {_OFF}"
        )
    if settings.mode == "push":
        missing = [k for k in ("topic", "audience") if not getattr(settings.push, k)]
        if missing:
            keys = " and ".join(f"push.{k}" for k in missing)
            return f"push mode needs {keys} in {path}; or use `mode: polling`, or {_OFF}"
    return None
