"""Per-process collaborators the Gmail steps share: settings, API client, LLM, keys.

Built on first use, not at import, so loading a step file touches no network and no secret;
the API client's module (with the mail parser it returns) is imported by the first `gmail()`,
so a server whose Gmail flow is off never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.common.services import Collaborators
from agents.gmail.env import gmail_env
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

if TYPE_CHECKING:
    from agents.gmail.api import GmailAPI
    from agents.llm import LLMClient
    from agents.notify import Notifiers

_shared = Collaborators()
_lock = _shared.lock
_cache = _shared.cache


def settings() -> GmailSettings:
    current = current_settings()
    return current


def settings_error() -> str | None:
    return settings_file().error


def gmail(user_id: str | None = None) -> GmailAPI:
    """The API client; rebuilt when the token file or the endpoint changes (a new connect)."""
    from agents.gmail.api import GmailAPI, api_url

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


def llm() -> LLMClient:
    return _shared.llm()


def notifiers() -> Notifiers:
    return _shared.notifiers()


def push_keys() -> JWKSKeys:
    url = certs_url()
    with _lock:
        cached = _cache.get("keys")
        if cached is None or cached.url != url:
            cached = _cache["keys"] = JWKSKeys(url)
        return cached


def webhook_token() -> str | None:
    """Bearer token `/webhooks/email` requires (`GMAIL_WEBHOOK_TOKEN`); None disables it."""
    token = gmail_env().webhook_token
    return token.get_secret_value() if token is not None else None


def reset() -> None:
    """Forget cached clients (tests, or after `stepline gmail connect`)."""
    with _lock:
        _cache.clear()
