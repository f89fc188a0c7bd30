"""Per-message counts survive a crash and a re-run without being lost or doubled."""

from __future__ import annotations

import pytest

from agents.gmail.counters import count_once, day_counts, increment
from agents.gmail.topics import COUNTED_GROUP, COUNTERS_GROUP

DAY, NEXT = "2024-05-01", "2024-05-02"


async def test_a_message_counts_once_even_when_rerun_on_another_day(memory_state) -> None:
    assert await count_once(memory_state, DAY, "received", "m1")
    assert not await count_once(memory_state, DAY, "received", "m1")
    assert not await count_once(memory_state, NEXT, "received", "m1")
    assert await count_once(memory_state, DAY, "spam", "m1")
    assert await count_once(memory_state, DAY, "received", "m2")
    await increment(memory_state, DAY, "cleaned", 4)
    assert await day_counts(memory_state, DAY) == {
        "received": 2,
        "spam": 1,
        "unsure": 0,
        "urgent": 0,
        "cleaned": 4,
    }
    assert await day_counts(memory_state, NEXT) == {
        "received": 0,
        "spam": 0,
        "unsure": 0,
        "urgent": 0,
        "cleaned": 0,
    }


async def test_count_is_kept_when_the_run_dies_right_after_its_claim(memory_state) -> None:
    class DiesOnSet:
        """The state of a process killed after its one atomic update."""

        update = memory_state.update

        async def set(self, *args: object, **kwargs: object) -> None:
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        await count_once(DiesOnSet(), DAY, "urgent", "m1")
    assert (await day_counts(memory_state, DAY))["urgent"] == 1
    # the redelivered message finds the claim and adds nothing
    assert not await count_once(memory_state, DAY, "urgent", "m1")
    assert (await day_counts(memory_state, DAY))["urgent"] == 1


async def test_totals_stored_before_claims_were_counts_still_add_up(memory_state) -> None:
    await memory_state.set(COUNTERS_GROUP, f"{DAY}:received", 3)
    await memory_state.set(COUNTED_GROUP, "received:old1", "a1b2c3")  # an old-style claim
    assert not await count_once(memory_state, DAY, "received", "old1")
    assert await count_once(memory_state, DAY, "received", "new1")
    assert (await day_counts(memory_state, DAY))["received"] == 4
