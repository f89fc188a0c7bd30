"""The per-process collaborators steps share: settings store, GitHub clients, LLM, notifiers.

Built on first use, not at import, so loading a step file touches no network and no secret;
the client and `.stepline.yml` modules are imported by their first use too, so a server
whose GitHub flow is off never loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.common.services import Collaborators
from agents.github.settings import GithubEnv, GithubSettings, SettingsStore, shared_store

__all__ = [
    "clients",
    "llm",
    "notifiers",
    "repo_configs",
    "reset",
    "settings",
    "store",
    "webhook_secret",
]

if TYPE_CHECKING:
    from agents.github.client import GithubClients
    from agents.github.repo_config import RepoConfigCache
    from agents.llm import LLMClient
    from agents.notify import Notifiers

_shared = Collaborators()
_lock = _shared.lock
_cache = _shared.cache


def store() -> SettingsStore:
    return shared_store()


def settings() -> GithubSettings:
    return shared_store().current()


def webhook_secret() -> str | None:
    secret = GithubEnv().webhook_secret
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


def clients(current: GithubSettings | None = None) -> GithubClients:
    """Clients for the current `api:` settings; an edit of them builds fresh clients."""
    from agents.github.client import GithubClients

    api = (current or settings()).api
    env = GithubEnv()
    key = (api.model_dump_json(), env.model_dump_json())
    with _lock:
        cached = _cache.get("clients")
        if cached is None or cached[0] != key:
            if cached is not None:
                cached[1].close()
            cached = _cache["clients"] = (key, GithubClients(env, api))
        return cached[1]


def repo_configs() -> RepoConfigCache:
    """The process's cache of `.stepline.yml` per (repository, base sha)."""
    from agents.github.repo_config import shared_cache

    return shared_cache()


def llm() -> LLMClient:
    return _shared.llm()


def notifiers() -> Notifiers:
    return _shared.notifiers()


def reset() -> None:
    """Forget every cached collaborator (tests change the environment between cases)."""
    with _lock:
        cached = _cache.pop("clients", None)
        if cached is not None:
            cached[1].close()
        _cache.clear()
    repo_configs().clear()
