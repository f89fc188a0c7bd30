"""Per-process collaborators the Gmail steps share: settings, API client, LLM, keys.

Built on first use, not at import, so loading a step file touches no network and no secret.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from agents.gmail.api import GmailAPI, api_url
from agents.gmail.oauth import token_file
from agents.gmail.pubsub import JWKSKeys, certs_url
from agents.gmail.settings import GmailSettings, current_settings, settings_file

__all__ = [
    "gmail",
    "llm",
    "notifiers",
    "push_keys",
    "reset",
    "settings",
    "settings_error",
    "webhook_token",
]

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def settings() -> GmailSettings:
    current = current_settings()
    return current


def settings_error() -> str | None:
    return settings_file().error


def gmail(user_id: str | None = None) -> GmailAPI:
    """The API client; rebuilt when the token file or the endpoint changes (a new connect)."""
    path = token_file()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = 0
    key = (str(path), stamp, api_url(), user_id or settings().user_id)
    with _lock:
        cached = _cache.get("gmail")
        if cached is not None and cached[0] == key:
            return cached[1]
    api = GmailAPI.connect(user_id=key[3])  # outside the lock: may refresh over the network
    with _lock:
        _cache["gmail"] = (key, api)
    return api


def llm() -> Any:
    from agents.llm import LLMClient

    with _lock:
        if "llm" not in _cache:
            _cache["llm"] = LLMClient.from_env()
        return _cache["llm"]


def notifiers() -> Any:
    # Cheap to build, so per call: it follows the process's current environment.
    from agents.notify import Notifiers

    return Notifiers()


def push_keys() -> JWKSKeys:
    url = certs_url()
    with _lock:
        cached = _cache.get("keys")
        if cached is None or cached.url != url:
            cached = _cache["keys"] = JWKSKeys(url)
        return cached


def webhook_token() -> str | None:
    """Bearer token `/webhooks/email` requires (`GMAIL_WEBHOOK_TOKEN`); None disables it."""
    return os.environ.get("GMAIL_WEBHOOK_TOKEN") or None


def reset() -> None:
    """Forget cached clients (tests, or after `stepline gmail connect`)."""
    with _lock:
        _cache.clear()
