"""Stepline: what a step author imports.

from app import ApiConfig, EventConfig, CronConfig, Context, Request, Response
from app import Permanent, Retry          # outcomes a handler can raise
from app import Middleware, Run           # hooks around every run
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
from app.middleware import Middleware, Run, RunOutcome
from app.retries import Permanent, Retry
from app.settings import Mode
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
    "Middleware",
    "Mode",
    "NotFound",
    "Permanent",
    "Request",
    "Response",
    "Retry",
    "Run",
    "RunOutcome",
    "State",
    "StepLoadError",
    "SteplineError",
    "SyncContext",
    "UndeclaredTopic",
]
