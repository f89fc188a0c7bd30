"""Typed step configs. A step file's `config` may be a dict or one of these models."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ApiConfig",
    "CronConfig",
    "Debounce",
    "EventConfig",
    "RateLimit",
    "StepConfig",
    "check_cron_expression",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")  # \Z: "$" also takes a trailing newline
_TOPIC = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*\Z")


def _model_class(value: Any) -> Any:
    if value is None or (isinstance(value, type) and issubclass(value, BaseModel)):
        return value
    raise ValueError("must be a pydantic model class (a subclass of pydantic.BaseModel)")


ModelClass = Annotated[Any, Field(default=None)]


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    name: str
    description: str = ""
    flows: list[str] = Field(default_factory=list)
    emits: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_', '.' or '-', starting with a letter or '_'")
        return value

    @field_validator("emits")
    @classmethod
    def _check_topics(cls, value: list[str]) -> list[str]:
        for topic in value:
            if not _TOPIC.match(topic):
                raise ValueError(f"{topic!r} is not a valid topic name")
        return value


class ApiConfig(_Common):
    """An HTTP endpoint: `async def handler(req, ctx)`."""

    type: Literal["api"] = "api"
    path: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    body: ModelClass = None
    response: ModelClass = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        if value.startswith(
            ("/_stepline", "/workbench", "/streams/", "/healthz", "/docs", "/openapi.json")
        ):
            raise ValueError("is reserved by Stepline; choose another path")
        if value.startswith("/{"):
            # Step routes are matched first; a leading parameter would swallow /workbench.
            raise ValueError("must start with a fixed segment, e.g. '/items/{id}' not '/{id}'")
        return value

    _body = field_validator("body", "response")(classmethod(lambda cls, v: _model_class(v)))


def _check_key_path(value: Any) -> Any:
    if isinstance(value, str) and (not value or any(not p for p in value.split("/"))):
        raise ValueError(
            f"{value!r} is not a key path: name fields of the event data joined by '/', "
            "e.g. 'repo/number', or pass a function of the data"
        )
    return value


class Debounce(BaseModel):
    """Run a burst of deliveries of one key once, on the last, after `seconds` of quiet (but
    no later than `max_wait` seconds after the first). The key: `key` here, else the step's."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    seconds: float = Field(gt=0)
    max_wait: float | None = Field(None, gt=0)
    key: str | Callable[[Any], Any] | None = None

    _key = field_validator("key")(classmethod(lambda cls, v: _check_key_path(v)))

    @model_validator(mode="after")
    def _wait_covers_quiet(self) -> Debounce:
        if self.max_wait is not None and self.max_wait < self.seconds:
            raise ValueError("max_wait must be at least `seconds` (the quiet time it caps)")
        return self


class RateLimit(BaseModel):
    """At most `per_second` or `per_minute` runs of the step start, across all processes; with
    `key` (a path into the event data or a function of it), that many per key, each key apart."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    per_second: int | None = Field(None, ge=1)
    per_minute: int | None = Field(None, ge=1)
    key: str | Callable[[Any], Any] | None = None

    _key = field_validator("key")(classmethod(lambda cls, v: _check_key_path(v)))

    @model_validator(mode="after")
    def _one_rate(self) -> RateLimit:
        if (self.per_second is None) == (self.per_minute is None):
            raise ValueError("give one of per_second or per_minute, e.g. {'per_minute': 60}")
        return self

    @property
    def window(self) -> tuple[int, float]:
        """(n, seconds): at most n claims per sliding window of that many seconds."""
        if self.per_second is not None:
            return self.per_second, 1.0
        assert self.per_minute is not None
        return self.per_minute, 60.0


class EventConfig(_Common):
    """A subscriber: `async def handler(data, ctx)`."""

    type: Literal["event"] = "event"
    subscribes: list[str] = Field(min_length=1)
    input: ModelClass = None
    retries: int = Field(3, ge=1, le=100)
    timeout: float = Field(30.0, gt=0)
    concurrency: int | None = Field(None, ge=1)
    # Flow control (app/flow.py): deliveries with one key run at most this many at a time.
    key: str | Callable[[Any], Any] | None = None
    concurrency_per_key: int | None = Field(None, ge=1)
    # What a delivery waiting for its retry does with its key: "hold" it (nothing of the key
    # overtakes it) or "release" it (the next go on; once due it queues behind its key again).
    key_on_failure: str = "hold"
    debounce: Debounce | None = None
    rate_limit: RateLimit | None = None

    _input = field_validator("input")(classmethod(lambda cls, v: _model_class(v)))
    _key = field_validator("key")(classmethod(lambda cls, v: _check_key_path(v)))

    @field_validator("key_on_failure")
    @classmethod
    def _check_key_on_failure(cls, value: str) -> str:
        if value not in ("hold", "release"):
            raise ValueError(
                f"{value!r} is not a choice: use 'hold' (a failing delivery keeps its key "
                "until it succeeds or is dead-lettered; the default) or 'release' (the next "
                "deliveries of its key go on while it waits for its retry)"
            )
        return value

    @model_validator(mode="after")
    def _key_needed(self) -> EventConfig:
        if self.concurrency_per_key is not None and self.key is None:
            raise ValueError(
                "concurrency_per_key needs `key`: the path into the event data (e.g. "
                "'repo/number') or function that says which deliveries share a key"
            )
        if self.key_on_failure != "hold" and self.concurrency_per_key is None:
            raise ValueError(
                "key_on_failure needs an ordering key to release: add `key` and "
                "`concurrency_per_key` (e.g. 1), or remove key_on_failure"
            )
        return self


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_NUMBER = re.compile(r"\d+")


def _check_cron_field(expr: str, text: str, label: str, low: int, high: int) -> None:
    """Name the field and its range for a number outside it (`0 25 * * *`: hour 25)."""
    for part in text.split(","):
        values, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"{expr!r}: {label} step {step!r} must be a whole number >= 1")
        for number in _CRON_NUMBER.findall(values):
            if not low <= int(number) <= high:
                raise ValueError(f"{expr!r}: {label} {number} is out of range {low}-{high}")


def check_cron_expression(value: str) -> str:
    """Validate a 5-field cron expression; the error names the field and its range.

    Public so that flow settings holding a schedule (e.g. Gmail's `cleanup.schedule`) give the
    same message as a step's `cron`.
    """
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} has {len(fields)} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week (e.g. '0 9 * * *')"
        )
    for text, (label, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        _check_cron_field(value, text, label, low, high)
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression (e.g. '0 9 * * *')")
    croniter(value, datetime(2000, 1, 1))
    return value


class CronConfig(_Common):
    """A schedule: `async def handler(ctx)`."""

    type: Literal["cron"] = "cron"
    cron: str
    timezone: str = "UTC"
    retries: int = Field(3, ge=1, le=100)
    timeout: float = Field(30.0, gt=0)

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        return check_cron_expression(value)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (e.g. 'Europe/Berlin')") from None
        return value


StepConfig = ApiConfig | EventConfig | CronConfig
