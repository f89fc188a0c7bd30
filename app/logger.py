"""`ctx.logger`: structured logs tagged with step and trace, kept with the span."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.redact import redact
from app.types import LogEntry

__all__ = ["StepLogger", "configure_logging"]

_py_logger = logging.getLogger("stepline.step")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class StepLogger:
    """Collects entries for the handler's span and forwards them to Python logging."""

    def __init__(self, step: str | None, trace_id: str | None, span_id: str | None,
                 sink: list[LogEntry], on_entry: Callable[[LogEntry], None] | None = None) -> None:
        self._step = step
        self._trace_id = trace_id
        self._span_id = span_id
        self._sink = sink
        self._on_entry = on_entry

    def _log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        entry = LogEntry(level, str(message), self._step, self._trace_id, self._span_id,
                         redact(fields))
        self._sink.append(entry)
        if _py_logger.isEnabledFor(_LEVELS[level]):
            extra = " ".join(f"{k}={v!r}" for k, v in entry.fields.items())
            _py_logger.log(_LEVELS[level], "[%s] %s %s", self._step, entry.message, extra,
                           extra={"trace_id": self._trace_id, "step": self._step})
        if self._on_entry is not None:
            self._on_entry(entry)

    def debug(self, message: str, **fields: Any) -> None:
        self._log("debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._log("error", message, fields)

    warn = warning
    exception = error


def configure_logging(level: str = "INFO") -> None:
    """Console logging for stepline processes (once per process; uvicorn's reload children
    start fresh, so the server factory calls this too)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level.upper(),
                            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
