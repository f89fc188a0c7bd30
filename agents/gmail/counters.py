"""Counts of the day: received, spam, unsure and urgent per message, cleaned as a running total.

A handler may run twice for one message (at-least-once delivery), and may die anywhere. So a
per-message count is not a counter to increment but the claim `name:message_id` itself, made
with one atomic `state.update` whose value records the day: a count is never lost (there is no
second write to crash before) and never doubled (a re-run finds the claim, on any day).
`day_counts` counts the day's claims. `cleaned` has no message to claim and is incremented.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from agents.gmail.topics import COUNTED_GROUP, COUNTERS_GROUP

__all__ = ["COUNTER_NAMES", "count_once", "day_counts", "increment", "today"]

COUNTER_NAMES = ("received", "spam", "unsure", "urgent", "cleaned")
_CLAIM_TTL = 8 * 24 * 3600.0  # longer than the emit dedup window


def today(timezone: str = "UTC", now: dt.datetime | None = None) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


async def increment(state: Any, day: str, name: str, by: int = 1) -> int:
    return int(await state.increment(COUNTERS_GROUP, f"{day}:{name}", by))


async def count_once(state: Any, day: str, name: str, message_id: str) -> bool:
    """Count `name` for `day` unless this message was already counted; True if counted now."""
    mine = {"day": day, "by": uuid.uuid4().hex}
    key = f"{name}:{message_id}"
    claim = await state.update(COUNTED_GROUP, key, lambda old: old or mine, None)
    if claim != mine:
        return False
    # Only bounds the key space: a crash before this leaves one claim without expiry, and the
    # count is already right.
    await state.set(COUNTED_GROUP, key, mine, ttl=_CLAIM_TTL)
    return True


async def day_counts(state: Any, day: str) -> dict[str, int]:
    # The counter totals hold `cleaned`, and the per-message counts written before they
    # became claims (those claims are plain strings, so nothing is counted twice).
    counts = {
        name: int(await state.get(COUNTERS_GROUP, f"{day}:{name}", 0) or 0)
        for name in COUNTER_NAMES
    }
    for key, claim in (await state.list(COUNTED_GROUP)).items():
        name = key.partition(":")[0]
        if isinstance(claim, dict) and claim.get("day") == day and name in counts:
            counts[name] += 1
    return counts
