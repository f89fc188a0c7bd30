"""The Gmail flow's settings: a pydantic model of `config/gmail.yaml`, re-read when it changes.

Hot reload comes from `agents.common.yaml_settings`: `SettingsFile.get()` costs one `stat`,
re-validates on change, and on an invalid edit keeps the last good settings and logs the
offending key with the reason.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.common.yaml_settings import YamlSettings, describe_validation_error
from agents.common.yaml_settings import config_path as shared_config_path
from app.step_config import RateLimit, check_cron_expression

__all__ = [
    "CleanupSettings",
    "GmailSettings",
    "NotifySettings",
    "PrioritySettings",
    "PushSettings",
    "SettingsFile",
    "SpamSettings",
    "config_path",
    "current_settings",
    "describe_validation_error",
    "settings_file",
]

log = logging.getLogger("stepline.gmail.settings")

_ADDRESS = re.compile(r"^(\*@[^@\s]+\.[^@\s]+|[^@\s*]+@[^@\s]+\.[^@\s]+)$")


class _Section(BaseModel):
    # A misspelt key must be an error that names it, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PushSettings(_Section):
    topic: str = Field("", description="Pub/Sub topic Gmail publishes to: projects/P/topics/T.")
    audience: str = Field("", description="The `aud` the push subscription's OIDC token carries.")
    service_account: str = Field("", description="If set, the token's `email` must equal it.")
    label_ids: list[str] = Field(default_factory=lambda: ["INBOX"])

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if value and not re.fullmatch(r"projects/[^/]+/topics/[^/]+", value):
            raise ValueError("must look like projects/PROJECT_ID/topics/TOPIC_NAME")
        return value


class PrioritySettings(_Section):
    urgent_keywords: list[str] = Field(
        default_factory=lambda: ["urgent", "asap", "emergency", "critical", "action required"]
    )
    vip_senders: list[str] = Field(default_factory=list)

    @field_validator("urgent_keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = [k.strip() for k in value]
        if any(not k for k in cleaned):
            raise ValueError("keywords must not be empty strings")
        return cleaned

    @field_validator("vip_senders")
    @classmethod
    def _vips(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            entry = entry.strip().lower()
            if not _ADDRESS.match(entry):
                raise ValueError(f"{entry!r} is neither an address nor '*@domain'")
            out.append(entry)
        return out


class SpamWeights(_Section):
    """How much each source's evidence counts: its log-odds are multiplied by this."""

    llm: float = Field(1.0, ge=0, le=5)
    bayes: float = Field(1.0, ge=0, le=5)
    rules: float = Field(1.0, ge=0, le=5)


class SpamSettings(_Section):
    threshold: float = Field(0.8, ge=0, le=1)
    unsure: float = Field(0.5, ge=0, le=1)
    action: Literal["move", "label", "none"] = "move"
    label: str = Field("Stepline/Suspected spam", min_length=1)
    unsure_label: str = Field("Stepline/Unsure", min_length=1)
    use_llm: bool = True
    use_rules: bool = True
    use_bayes: bool = True
    weights: SpamWeights = Field(default_factory=SpamWeights)
    model_path: Path = Path(".stepline/gmail-bayes.json")
    # The spam filter's rate limit (it makes at most one LLM call per mail), kept by the
    # runtime across processes so that a burst of mail reaches the LLM spread out. Read when
    # the step loads; null: no limit.
    llm_rate_limit: RateLimit | None = Field(default_factory=lambda: RateLimit(per_second=2))

    @model_validator(mode="after")
    def _bands(self) -> SpamSettings:
        if self.unsure > self.threshold:
            raise ValueError(
                f"unsure ({self.unsure}) must not be above threshold ({self.threshold})"
            )
        return self


class NotifySettings(_Section):
    push: bool = True
    slack: bool = True
    slack_channel: str | None = None


class CleanupSettings(_Section):
    enabled: bool = True
    schedule: str = "0 23 * * *"
    retention_days: int = Field(7, ge=1, le=3650)
    delete: bool = False

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return check_cron_expression(value)


class ReportSettings(_Section):
    enabled: bool = True
    slack_channel: str | None = None


class GmailSettings(_Section):
    enabled: bool = True
    mode: Literal["polling", "push"] = "polling"
    user_id: str = "me"
    recent_limit: int = Field(50, ge=1, le=500)
    timezone: str = "UTC"
    push: PushSettings = Field(default_factory=PushSettings)
    priority: PrioritySettings = Field(default_factory=PrioritySettings)
    spam: SpamSettings = Field(default_factory=SpamSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    cleanup: CleanupSettings = Field(default_factory=CleanupSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {value!r}; use a name such as 'Europe/Paris'"
            raise ValueError(msg) from None
        return value


def config_path() -> Path:
    """`$STEPLINE_CONFIG_DIR/gmail.yaml` (the directory defaults to `config`)."""
    return shared_config_path("gmail.yaml")


class SettingsFile(YamlSettings[GmailSettings]):
    """Settings backed by one YAML file; `get()` is cheap and always returns valid settings."""

    def __init__(self, path: Path) -> None:
        super().__init__(GmailSettings, path, log)

    def get(self) -> GmailSettings:
        return self.current()

    @property
    def error(self) -> str | None:
        """`path: key: reason` when the file on disk was rejected; the CLI prints it as is."""
        return f"{self.path}: {self.problem}" if self.problem is not None else None


_files: dict[Path, SettingsFile] = {}
_files_lock = threading.Lock()


def current_settings() -> GmailSettings:
    """The settings in force, from the file under the configured config directory."""
    path = config_path().resolve()
    with _files_lock:
        loader = _files.get(path)
        if loader is None:
            loader = _files[path] = SettingsFile(path)
    return loader.get()


def settings_file() -> SettingsFile:
    """The shared loader for the configured path (so steps can read `.error`)."""
    current_settings()
    return _files[config_path().resolve()]
