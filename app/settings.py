"""Every STEPLINE_* setting in one pydantic-settings class, and the `Mode` a process runs in."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Mode", "Settings"]


class Mode(StrEnum):
    """What a process was started as. The command chooses it (`stepline dev` is DEV, and so on);
    anything started another way, such as `uvicorn app.server.main:app_from_env --factory`,
    is START: production rules, with the admin API closed without the token and unsigned
    webhooks refused. Only DEV relaxes anything."""

    DEV = "dev"
    START = "start"
    SERVER = "server"  # `start --workers N`: HTTP only, handlers run in the workers
    WORKER = "worker"  # `stepline worker`: handlers and cron, no HTTP

    @property
    def production(self) -> bool:
        return self is not Mode.DEV


_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
"""Names logging takes for a level besides its own (uvicorn takes only the latter)."""


class Settings(BaseSettings):
    """Runtime settings, read from the environment (and `.env`) with the `STEPLINE_` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="STEPLINE_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    steps: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path("steps")],
        description="Directories searched recursively for *_step.py files (':'-separated).",
    )
    db: Path = Field(Path(".stepline/stepline.db"), description="SQLite database file.")
    config_dir: Path = Field(Path("config"), description="Directory of the user's YAML files.")
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=0, le=65535)
    mode: Mode = Field(Mode.START, description="Set by the command; production unless dev.")
    backend: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "STEPLINE_REDIS_URL"),
    )
    redis_prefix: str = Field("stepline", description="Key prefix so apps can share one Redis.")
    redis_allow_eviction: bool = Field(
        False,
        description="Start even when Redis's maxmemory-policy may evict keys (loses "
        "events when memory is full).",
    )
    workbench_token: SecretStr | None = None
    flows: str | None = Field(
        None,
        description="Flows that must be configured, comma-separated "
        "(github,gmail); a flow left out is off. Unset: each flow decides "
        "by its credentials and its YAML's `enabled`.",
    )
    verify_credentials: bool = Field(
        True, description="`start` asks GitHub and Slack whether the flows' tokens work."
    )
    public_host: str = Field("localhost", description="Host name the Workbench is reached by.")
    dedup_ttl: float = Field(7 * 24 * 3600, gt=0, description="Seconds an emit key is remembered.")
    lease_seconds: float = Field(30.0, gt=0, description="How long a claimed delivery is held.")
    retry_base: float = Field(1.0, ge=0, description="First retry delay in seconds.")
    retry_max: float = Field(300.0, ge=0, description="Longest retry delay in seconds.")
    poll_interval: float = Field(0.2, gt=0, description="Seconds between polls for due work.")
    batch_size: int = Field(256, ge=1, description="Most deliveries claimed or committed at once.")
    concurrency: int = Field(64, ge=1, description="Most handler runs in flight per process.")
    shutdown_grace: float = Field(10.0, ge=0, description="Seconds running handlers get on stop.")
    startup_timeout: float = Field(
        60.0,
        ge=0,
        description="Seconds a long-running process waits for its backend at start "
        "before it exits non-zero (0: wait for ever).",
    )
    ready_timeout: float = Field(
        2.0,
        gt=0,
        description="Seconds /readyz waits for the backend to answer a ping before it "
        "answers 503 (a hung Redis must not hang the probe).",
    )
    body_limit: int = Field(32 * 1024 * 1024, gt=0, description="Largest request body in bytes.")
    trace_retention: int = Field(10_000, ge=100, description="Spans kept; older ones are pruned.")
    log_retention: int = Field(50_000, ge=100, description="Log entries kept.")
    dead_retention: int = Field(10_000, ge=10, description="Dead letters kept.")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Log level, in any case (`debug` is `DEBUG`)."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per log line."
    )
    access_log: bool = Field(True, description="`stepline start` logs every HTTP request.")
    metrics: bool = Field(True, description="Count runs and serve GET /metrics.")
    otel: bool = Field(False, description="Export each run as an OTLP span (stepline[otel]).")
    sync_threads: int = Field(8, ge=1, description="Threads per step for plain `def` handlers.")
    loop_block_ms: float = Field(
        500.0,
        ge=0,
        description="An event-loop stall this long is logged with the step that "
        "caused it (0: no watchdog).",
    )
    retry_window: float = Field(
        24 * 3600,
        gt=0,
        description="Seconds after a delivery's first run (not its emit, which a delay or a "
        "wait behind its key may put days earlier) during which `Retry` re-schedules it "
        "without counting an attempt.",
    )

    @field_validator("steps", mode="before")
    @classmethod
    def _split_steps(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p) for p in value.split(":") if p]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        # logging takes `debug` as well as `DEBUG`; a name it does not know is refused here, as
        # a bad STEPLINE_PORT is, instead of as a ValueError traceback from logging.basicConfig.
        # Its aliases WARN and FATAL worked before the check: they name the level uvicorn knows.
        if not isinstance(value, str):
            return value
        return _LEVEL_ALIASES.get(value.upper(), value.upper())

    @field_validator("db", "config_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()
