"""Every error Stepline raises on purpose derives from one root.

SteplineError
├── ConfigError            settings or environment are wrong
├── StepLoadError          a step file cannot be loaded (names file and field)
├── UndeclaredTopic        ctx.emit() of a topic missing from the step's `emits`
├── BackendError           the storage backend failed or is unreachable
│   └── BackendUnavailable
└── NotFound               a step, dead letter or cron job of that name does not exist
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "NotFound",
    "StepLoadError",
    "SteplineError",
    "UndeclaredTopic",
]


class SteplineError(Exception):
    """Root of every error raised by Stepline itself."""


class ConfigError(SteplineError):
    """A setting or environment variable has a value Stepline cannot use."""


class StepLoadError(SteplineError):
    """A step file could not be loaded; the message names the file and the field."""

    def __init__(self, file: str, message: str, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.reason = message
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + message)


class UndeclaredTopic(SteplineError):
    """A handler emitted a topic that its step config does not declare in `emits`."""

    def __init__(self, step: str, topic: str, declared: list[str]) -> None:
        self.step = step
        self.topic = topic
        listed = ", ".join(declared) or "nothing"
        super().__init__(
            f"step {step!r} emitted {topic!r} but its config declares emits: [{listed}]; "
            f"add {topic!r} to `emits`"
        )


class BackendError(SteplineError):
    """The storage backend failed."""


class BackendUnavailable(BackendError):
    """The storage backend cannot be reached."""


class NotFound(SteplineError):
    """The thing asked for does not exist."""
