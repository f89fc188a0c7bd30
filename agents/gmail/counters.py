"""Counts of the day (received, spam, urgent, cleaned) kept with atomic state increments.

A handler may run twice for one message (at-least-once delivery), so per-message counts go
through a claim: the first run to claim `name:message_id` increments, any later run sees the
claim and does not.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from agents.gmail.topics import COUNTED_GROUP, COUNTERS_GROUP

__all__ = ["COUNTER_NAMES", "count_once", "day_counts", "increment", "today"]

COUNTER_NAMES = ("received", "spam", "urgent", "cleaned")
_CLAIM_TTL = 8 * 24 * 3600.0  # longer than the emit dedup window


def today(timezone: str = "UTC", now: dt.datetime | None = None) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


async def increment(state: Any, day: str, name: str, by: int = 1) -> int:
    return int(await state.increment(COUNTERS_GROUP, f"{day}:{name}", by))


async def count_once(state: Any, day: str, name: str, message_id: str) -> bool:
    """Increment `name` for `day` unless this message was already counted; True if counted."""
    token = uuid.uuid4().hex
    key = f"{name}:{message_id}"
    owner = await state.update(COUNTED_GROUP, key, lambda old: old or token, None)
    if owner != token:
        return False
    await state.set(COUNTED_GROUP, key, token, ttl=_CLAIM_TTL)  # bound the claims' key space
    await increment(state, day, name)
    return True


async def day_counts(state: Any, day: str) -> dict[str, int]:
    return {
        name: int(await state.get(COUNTERS_GROUP, f"{day}:{name}", 0) or 0)
        for name in COUNTER_NAMES
    }
