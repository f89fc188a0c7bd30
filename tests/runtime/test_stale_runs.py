"""A stale run: one whose lease ran out while it still ran, so its delivery was claimed again
(same id, the next attempt) and runs elsewhere. When the stale run ends after all, its outcome
is ignored: its ack must not free the delivery's ordering key (the next delivery of the key
would start beside the redelivery) nor settle the delivery under the run holding it, and its
retry or dead letter must not overwrite it. Its emits are stored as any run's (at-least-once).

Two backend objects on one store stand for two processes; run against every backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from app.backends.base import Backend
from app.settings import Settings
from app.types import Batch, Delivery, FlowPlan, Message, Outcome

LEASE = 0.2
"""The first claim's lease, real seconds: a Redis takeover goes by the server's idle time."""

Pair = Callable[[], Awaitable[tuple[Backend, Backend]]]


@pytest.fixture
async def two_processes(tmp_path: Path, backend_name: str) -> AsyncIterator[Pair]:
    made: list[Backend] = []

    def new() -> Backend:
        if backend_name == "sqlite":
            from app.backends.sqlite import SQLiteBackend

            return SQLiteBackend(Settings(db=tmp_path / "stepline.db"))
        from app.backends.redis import RedisBackend
        from tests.runtime.redis_support import URL

        return RedisBackend(Settings(REDIS_URL=URL, redis_prefix=prefix))

    prefix = f"stepline-test-{uuid.uuid4().hex[:12]}"

    async def make() -> tuple[Backend, Backend]:
        for _ in range(2):
            made.append(new())
            await made[-1].open()
        return made[-2], made[-1]

    yield make
    if backend_name == "redis" and made:
        await made[0].purge()  # type: ignore[attr-defined]
    for backend in made:
        await backend.close()


def _keyed(i: int, key: str | None = "pr/1") -> Message:
    plans = {"A": FlowPlan(key=key, limit=1)} if key else None
    return Message("topic", {"i": i}, f"trace-{i}", ("A",), partitions=plans)


async def _taken_over(a: Backend, b: Backend) -> tuple[Delivery, Delivery]:
    """The first delivery, claimed by `a` on a short lease, then by `b` once it ran out."""
    [stale] = await a.claim({"A": 5}, {"A": LEASE})
    await asyncio.sleep(LEASE * 1.5)
    # Redis takes a delivery over once it was idle for the claim's own lease; the later
    # claims' (30 s) take nothing over.
    [current] = await b.claim({"A": 5}, {"A": LEASE if b.name == "redis" else 30})
    assert (current.id, current.data, current.attempt) == (stale.id, stale.data, 2)
    return stale, current


async def _claimed(backend: Backend) -> list[int]:
    return [d.data["i"] for d in await backend.claim({"A": 5}, {"A": 30})]


async def test_a_stale_ack_does_not_let_the_next_delivery_of_its_key_start(two_processes: Pair):
    a, b = await two_processes()
    await a.write(Batch(messages=[_keyed(0), _keyed(1)]))
    stale, current = await _taken_over(a, b)
    # The stale run ends and acks, with an emit: the emit is stored, the ack ignored.
    await a.write(Batch(messages=[_keyed(9, key=None)], outcomes=[Outcome(stale, "ok")]))
    assert await _claimed(b) == [9]  # not 1: the redelivery of 0 still holds the key
    assert await a.pending("A") == 3
    await b.write(Batch(outcomes=[Outcome(current, "ok")]))
    assert await _claimed(a) == [1]
    assert await a.pending("A") == 2  # 1 and 9, both claimed and running


@pytest.mark.parametrize("status", ["retry", "dead"])
async def test_a_stale_failure_leaves_the_redelivery_running(two_processes: Pair, status: str):
    a, b = await two_processes()
    await a.write(Batch(messages=[_keyed(0), _keyed(1)]))
    stale, current = await _taken_over(a, b)
    await a.write(Batch(outcomes=[Outcome(stale, status, retry_at=0.0, error="late")]))  # type: ignore[arg-type]
    assert await a.dead_letters() == []
    assert await _claimed(b) == []  # neither a retry of 0 (due at once) nor 1
    await b.write(Batch(outcomes=[Outcome(current, "ok")]))
    assert await _claimed(a) == [1]
    assert await a.pending("A") == 1


async def test_a_stale_ack_of_a_delivery_without_a_key_leaves_it_to_its_redelivery(
    two_processes: Pair,
):
    a, b = await two_processes()
    await a.write(Batch(messages=[_keyed(0, key=None)]))
    stale, current = await _taken_over(a, b)
    await a.write(Batch(outcomes=[Outcome(stale, "ok")]))
    assert await a.pending("A") == 1
    # The redelivery's own failure counts: it runs again.
    await b.write(Batch(outcomes=[Outcome(current, "retry", retry_at=0.0, error="x")]))
    [again] = await b.claim({"A": 5}, {"A": 30})
    assert (again.data, again.attempt) == ({"i": 0}, 3)
    await b.write(Batch(outcomes=[Outcome(again, "ok")]))
    assert await a.pending("A") == 0


async def test_an_uncounted_retry_of_the_redelivery_still_settles_it(two_processes: Pair):
    # A `Retry` stores one less than its claimed attempt; it is told by the claimed one.
    a, b = await two_processes()
    await a.write(Batch(messages=[_keyed(0), _keyed(1)]))
    stale, current = await _taken_over(a, b)
    await b.write(Batch(outcomes=[Outcome(current, "retry", retry_at=0.0, uncounted=True)]))
    [again] = await b.claim({"A": 5}, {"A": 30})
    assert (again.data, again.attempt) == ({"i": 0}, 2)
    await a.write(Batch(outcomes=[Outcome(stale, "ok")]))  # stale: attempt 1 of 2 claims
    assert await _claimed(b) == []
    await b.write(Batch(outcomes=[Outcome(again, "ok")]))
    assert await _claimed(a) == [1]
