"""`ctx.logger`: structured logs tagged with step and trace, kept with the span.

Also where every log record of a Stepline process is masked (`mask_log_records`): a message's
text, its arguments and its traceback pass through app/redact.py before any handler sees them,
so no formatter, handler or log collector receives a secret.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

from app.backends.base import safe_text
from app.redact import redact, redact_text
from app.types import LogEntry

__all__ = ["StepLogger", "configure_logging", "mask_log_records"]

_py_logger = logging.getLogger("stepline.step")
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class StepLogger:
    """Collects entries for the handler's span and forwards them to Python logging."""

    def __init__(
        self,
        step: str | None,
        trace_id: str | None,
        span_id: str | None,
        sink: list[LogEntry],
        on_entry: Callable[[LogEntry], None] | None = None,
        attempt: int | None = None,
    ) -> None:
        self._step = step
        self._attempt = attempt
        self._trace_id = trace_id
        self._span_id = span_id
        self._sink = sink
        self._on_entry = on_entry

    def _log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        entry = LogEntry(
            level,
            redact_text(str(message)),
            self._step,
            self._trace_id,
            self._span_id,
            _storable(redact(fields)),
        )
        self._sink.append(entry)
        if _py_logger.isEnabledFor(_LEVELS[level]):
            extra = " ".join(f"{k}={v!r}" for k, v in entry.fields.items())
            _py_logger.log(
                _LEVELS[level],
                "[%s] %s %s",
                self._step,
                entry.message,
                extra,
                extra={
                    "trace_id": self._trace_id,
                    "step": self._step,
                    "attempt": self._attempt,
                    "fields": entry.fields,
                    "text": entry.message,
                },
            )
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


def _storable(value: Any) -> Any:
    """Fields as every reader can take them: a NaN score or a header decoded with
    surrogateescape is worth seeing in the log, never worth failing the run that logged it
    (the store refuses NaN), the Workbench's JSON or a JSON log line."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_storable(v) for v in value]
    return value


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Console logging for stepline processes (once per process; uvicorn's reload children
    start fresh, so the server factory calls this too). `fmt` is "text" or "json"."""
    from app.logfmt import install_formatter

    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level.upper())
    install_formatter(fmt)
    mask_log_records()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


def _masked(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        return record
    masked = redact_text(message)
    if masked != message:
        args = record.args
        if isinstance(args, tuple) and args and isinstance(record.msg, str):
            # Keep the arguments' shape where masking each one suffices: some formatters
            # (uvicorn's access log) unpack them.
            shaped = tuple(redact_text(a) if isinstance(a, str) else a for a in args)
            with contextlib.suppress(Exception):
                if redact_text(record.msg % shaped) == record.msg % shaped:
                    record.args = shaped
                    return _mask_exception(record)
        # Formatted once here: an argument may be a secret only in its context ("password=%s").
        record.msg, record.args = masked, ()
    return _mask_exception(record)


def _mask_exception(record: logging.LogRecord) -> logging.LogRecord:
    if record.exc_info and record.exc_info[1] is not None:
        # Formatters call formatException(exc_info) themselves; leave them only the text.
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def mask_log_records() -> None:
    """Mask every log record this process makes, whichever logger, handler or formatter is
    used (idempotent: the record factory is wrapped once)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_stepline_masking", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _masked(factory(*args, **kwargs))

    make._stepline_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
