"""Stepline: what a step author imports.

    from app import ApiConfig, EventConfig, CronConfig, Context, Request, Response
"""

from app.context import Context, SyncContext
from app.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    NotFound,
    SteplineError,
    StepLoadError,
    UndeclaredTopic,
)
from app.http import Request, Response
from app.state import State
from app.step_config import ApiConfig, CronConfig, EventConfig

__all__ = [
    "ApiConfig",
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "Context",
    "CronConfig",
    "EventConfig",
    "NotFound",
    "Request",
    "Response",
    "State",
    "StepLoadError",
    "SteplineError",
    "SyncContext",
    "UndeclaredTopic",
]
