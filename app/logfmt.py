"""How log lines look: text for people (with the trace id), or one JSON object per line for
log collectors (`STEPLINE_LOG_FORMAT=json`).

Handler logs (`ctx.logger`) carry their step, trace id, attempt and fields as record
attributes; both formats show them. Uvicorn's own loggers are left unconfigured by the CLI, so
they propagate here and come out in the same format.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["JsonFormatter", "TextFormatter", "install_formatter"]

_MARK = "_stepline_handler"


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, then `trace=<id>` when the line belongs to a trace."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace = getattr(record, "trace_id", None)
        if not trace:
            return line
        attempt = getattr(record, "attempt", None)
        more = f" attempt={attempt}" if attempt and attempt > 1 else ""
        head, sep, tail = line.partition("\n")  # keep a traceback below the tagged line
        return f"{head} trace={trace}{more}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and step, trace_id, attempt and
    fields for handler logs; `exc` holds a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = getattr(record, "text", None)
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": text if isinstance(text, str) else record.getMessage(),
        }
        for key in ("step", "trace_id", "attempt"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        fields = getattr(record, "fields", None)
        if fields:
            out["fields"] = fields
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        # ensure_ascii: a lone surrogate in a message is escaped instead of breaking the line.
        return json.dumps(out, default=str, ensure_ascii=True)


def install_formatter(fmt: str) -> None:
    """Format the root logger's console handlers (those basicConfig made or we marked) as
    `fmt` ("text" or "json"); handlers others installed (pytest's, an app's) are left alone."""
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    for handler in logging.getLogger().handlers:
        ours = getattr(handler, _MARK, False) or (
            type(handler) is logging.StreamHandler
            and handler.formatter is not None
            and handler.formatter._fmt == logging.BASIC_FORMAT
        )
        if ours:
            setattr(handler, _MARK, True)
            handler.setFormatter(formatter)
