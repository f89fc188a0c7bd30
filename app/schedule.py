"""Delayed emits: when a message becomes due.

`ctx.emit(topic, data, delay=seconds)` or `at=datetime` stores the message at once, in the same
commit as the run that emitted it, with a due time; the backend keeps it as a scheduled delivery
(the same place a `Retry` waits for its time) until then. It is as durable as any delivery: it
survives restarts and has no bound but the storage. Due times are read from the backend's clock,
which tests replace to move time forward without waiting.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["LATEST_DUE", "due_time"]

LATEST_DUE = datetime.max.replace(tzinfo=UTC).timestamp()
"""The latest due time: the end of the year 9999, the last moment a datetime (`at=`) holds.
A delay past it would be shown and compared as no time at all (NaN in the Workbench)."""


def due_time(delay: float | timedelta | None, at: datetime | None, now: float) -> float | None:
    """The epoch second a message emitted `now` becomes due, or None for "at once"."""
    if delay is not None and at is not None:
        raise TypeError("emit takes delay=... or at=..., not both")
    if at is not None:
        if not isinstance(at, datetime):
            raise TypeError(f"emit at=... must be a datetime, not {type(at).__name__}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(
                f"emit at={at.isoformat()} has no time zone, so its moment is ambiguous; "
                "pass an aware datetime, e.g. datetime.now(UTC) + timedelta(minutes=10)"
            )
        due = at.timestamp()
        if due > LATEST_DUE:  # 9999-12-31 23:00-12:00 is a datetime, but its moment is not
            raise ValueError(
                f"emit at={at.isoformat()} is past the end of the year 9999 (UTC), the latest a "
                "due time can be"
            )
        return due if due > now else None
    if delay is None:
        return None
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"emit delay=... must be seconds (a number), not {type(delay).__name__}")
    # An int is finite, and one past float's range (10**400) makes isfinite (and now + it)
    # raise OverflowError; Python compares it with a float exactly.
    if not (isinstance(seconds, int) or math.isfinite(seconds)) or seconds < 0:
        raise ValueError(f"emit delay=... must be a finite number of seconds >= 0, not {delay!r}")
    if seconds > LATEST_DUE - now:
        raise ValueError(
            f"emit delay={delay!r} is past the end of the year 9999, the latest a due time can "
            f"be: at most {LATEST_DUE - now:.0f} seconds from now"
        )
    return now + seconds if seconds > 0 else None
