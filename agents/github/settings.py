"""Settings of the GitHub flow: `config/github.yaml` (behaviour) and the environment (secrets).

The YAML file is hot-reloaded by `agents.common.yaml_settings`: an edit that does not validate
is logged with the offending key and the reason, and the last good settings stay in force.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.common.yaml_settings import YamlSettings
from agents.common.yaml_settings import config_path as shared_config_path

__all__ = [
    "DEFAULT_IGNORED",
    "GithubEnv",
    "GithubSettings",
    "MergePolicy",
    "SettingsStore",
    "config_path",
    "shared_store",
]

log = logging.getLogger("stepline.github.settings")

# Files no reviewer gains anything from reading: lock files, generated, vendored, minified, binary.
DEFAULT_IGNORED: tuple[str, ...] = (
    "*.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "poetry.lock",
    "Cargo.lock",
    "go.sum",
    "*.min.js",
    "*.min.css",
    "*.map",
    "*_pb2.py",
    "*.pb.go",
    "*.generated.*",
    "vendor/**",
    "third_party/**",
    "node_modules/**",
    "dist/**",
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.ico",
    "*.pdf",
    "*.zip",
    "*.gz",
    "*.woff",
    "*.woff2",
    "*.ttf",
)


class _Model(BaseModel):
    # A misspelt key must be an error that names it, not a silently ignored line.
    model_config = ConfigDict(extra="forbid")


class MergePolicy(_Model):
    """When the merge step may merge a pull request of one repository."""

    enabled: bool = False
    min_score: int = Field(85, ge=0, le=100)
    required_label: str | None = "automerge"
    method: Literal["merge", "squash", "rebase"] = "squash"
    require_checks: bool = True
    # A repository without any CI would otherwise wait forever; saying so is a choice.
    allow_no_checks: bool = False
    # A fork's author has no write access: their PR merges only where the policy says so.
    allow_forks: bool = False
    authors: list[str] = Field(default_factory=list)
    # Arm GitHub's own auto-merge (GraphQL) while checks run, instead of waiting for them here.
    github_auto_merge: bool = False

    @model_validator(mode="after")
    def _not_llm_alone(self) -> MergePolicy:
        checks_decide = self.require_checks and not self.allow_no_checks
        if self.enabled and not self.required_label and not checks_decide:
            raise ValueError(
                "an enabled merge policy needs required_label, or require_checks without "
                "allow_no_checks: auto-merge never rests on the AI score alone"
            )
        return self

    def allows_author(self, login: str) -> bool:
        """True when `authors` is empty or lists `login` (case-insensitive)."""
        return not self.authors or login.lower() in {a.lower() for a in self.authors}


class SlackSettings(_Model):
    default_channel: str | None = None
    channels: dict[str, str] = Field(default_factory=dict)
    opened: bool = True
    reviewed: bool = True
    merged: bool = True
    push: bool = False


class ReviewSettings(_Model):
    llm: bool = True
    max_input_tokens: int = Field(12_000, ge=2000)  # one LLM call's prompt
    # All calls of one review together: sized so a ~3,000-line pull request is read whole.
    max_total_tokens: int = Field(120_000, ge=2000)
    max_calls: int = Field(16, ge=1, le=100)
    max_comments: int = Field(25, ge=0)
    large_file_lines: int = Field(800, ge=1)
    rules: bool = True
    # Read when the review step loads (a change needs a restart): pushes to one pull request
    # with less than this many quiet seconds between them are reviewed once, at the newest
    # head, and at the latest `debounce_max_wait` seconds after the first. 0 turns it off.
    debounce_seconds: float = Field(20.0, ge=0)
    debounce_max_wait: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _wait_covers_quiet(self) -> ReviewSettings:
        if self.debounce_max_wait < self.debounce_seconds:
            raise ValueError("debounce_max_wait must be at least debounce_seconds (it caps it)")
        return self


class ReportSettings(_Model):
    enabled: bool = True
    cron: str = "0 9 * * *"
    timezone: str = "UTC"
    channel: str | None = None

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("a cron expression has 5 fields, e.g. '0 9 * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}, e.g. 'Europe/Paris'") from exc
        return value


class ApiSettings(_Model):
    """How hard we lean on the GitHub API; PyGithub's own defaults sleep for too long."""

    timeout: int = Field(15, ge=1)
    retries: int = Field(3, ge=0)
    max_retry_wait: float = Field(10.0, ge=0)
    per_page: int = Field(100, ge=1, le=100)
    seconds_between_requests: float = Field(0.0, ge=0)
    # Deprecated and ignored (a warning says so): it slept between writes in each process,
    # which paced nothing across processes. The runtime's rate limits below do that now.
    seconds_between_writes: float = Field(0.0, ge=0)
    # Review runs (each a few writes) per installation (or token) per minute, across processes:
    # the review step's rate limit. GitHub asks for at most 80 content writes a minute.
    reviews_per_minute: int | None = Field(20, ge=1)
    # The same for each other step that writes to GitHub: MergePullRequest (the merge PUT, or
    # arming auto-merge) and RecheckMerge (the same, or disarming it), each its own budget.
    writes_per_minute: int | None = Field(20, ge=1)
    # GitHub answers `mergeable: null` until it has computed it: read again after this many
    # seconds, doubling each time (a delayed emit), at most `mergeable_rechecks` times.
    mergeable_wait: float = Field(5.0, ge=0)
    mergeable_rechecks: int = Field(5, ge=0, le=20)


class GithubSettings(_Model):
    """The model of `config/github.yaml`; every key has a default, so an empty file is valid."""

    enabled: bool = True
    repositories: list[str] = Field(default_factory=list)
    skip_drafts: bool = True
    skip_bots: bool = True
    ignore: list[str] = Field(default_factory=list)
    use_default_ignores: bool = True
    review_command: str = "/review"
    slack: SlackSettings = Field(default_factory=SlackSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    merge: dict[str, MergePolicy] = Field(default_factory=dict)
    report: ReportSettings = Field(default_factory=ReportSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    def allows(self, repo: str) -> bool:
        """True when `repo` ("owner/name") is on the allow-list; an empty list allows all."""
        if not self.repositories:
            return True
        name = repo.lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in self.repositories)

    def ignored_globs(self) -> list[str]:
        return [*(DEFAULT_IGNORED if self.use_default_ignores else ()), *self.ignore]

    def channel_for(self, repo: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.slack.channels.items()}
        return lowered.get(repo.lower(), self.slack.default_channel)

    def merge_policy(self, repo: str) -> MergePolicy:
        """The policy for `repo`: its own entry, else the `default` entry, else merging off."""
        lowered = {k.lower(): v for k, v in self.merge.items()}
        return lowered.get(repo.lower()) or lowered.get("default") or MergePolicy()


class GithubEnv(BaseSettings):
    """Secrets and endpoints from the environment; they never live in `config/`."""

    model_config = SettingsConfigDict(
        env_prefix="GITHUB_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    token: SecretStr | None = None
    app_id: str | None = None
    app_private_key_file: Path | None = None
    webhook_secret: SecretStr | None = None
    api_url: str = "https://api.github.com"

    @property
    def uses_app(self) -> bool:
        return bool(self.app_id and self.app_private_key_file)


def config_path(name: str = "github.yaml") -> Path:
    return shared_config_path(name)


class SettingsStore(YamlSettings[GithubSettings]):
    """Hands out the current settings, re-reading the file when it changes."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(GithubSettings, path or config_path(), log)

    @property
    def last_error(self) -> str | None:
        """Why the file on disk was rejected (`key: reason`), None when it is in force."""
        return self.problem


_stores: dict[Path, SettingsStore] = {}
_stores_lock = threading.Lock()


def shared_store() -> SettingsStore:
    """One store per config path per process, so steps share the reload state."""
    path = config_path().resolve()
    with _stores_lock:
        store = _stores.get(path)
        if store is None:
            store = _stores[path] = SettingsStore(path)
        return store
