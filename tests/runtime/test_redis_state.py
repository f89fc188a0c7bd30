"""State on Redis: atomic updates across many clients, TTL, JSON values, groups."""

from __future__ import annotations

import asyncio

import pytest

from app.backends.redis import RedisBackend
from tests.runtime.redis_support import REDIS_MARKS, MakeBackend

pytestmark = REDIS_MARKS


async def test_twenty_clients_updating_one_key_lose_no_update(make_backend: MakeBackend):
    clients = [await make_backend() for _ in range(20)]

    async def append_many(b: RedisBackend, n: int) -> None:
        for i in range(10):
            await b.state_update("votes", "ballot", lambda v, x=f"{n}.{i}": [*v, x], [])

    await asyncio.gather(*(append_many(b, n) for n, b in enumerate(clients)))
    found, ballot = await clients[0].state_get("votes", "ballot")
    assert found and sorted(ballot) == sorted(f"{n}.{i}" for n in range(20) for i in range(10))


async def test_twenty_clients_incrementing_get_every_increment(make_backend: MakeBackend):
    clients = [await make_backend() for _ in range(20)]

    async def bump(b: RedisBackend) -> list[int | float]:
        return [await b.state_increment("stats", "hits", 1) for _ in range(50)]

    seen = await asyncio.gather(*(bump(b) for b in clients))
    assert await clients[0].state_get("stats", "hits") == (True, 1000)
    # Each increment returns the value it produced: every number from 1 to 1000, once.
    assert sorted(v for values in seen for v in values) == list(range(1, 1001))


async def test_increment_keeps_ints_int_and_refuses_non_numbers(make_backend: MakeBackend):
    b = await make_backend()
    assert await b.state_increment("g", "n", 5) == 5
    assert isinstance(await b.state_increment("g", "n", -2), int)
    assert await b.state_increment("g", "n", 0.5) == 3.5
    assert await b.state_increment("g", "f", 2.0) == 2.0
    found, value = await b.state_get("g", "f")
    assert found and isinstance(value, float)
    await b.state_set("g", "text", "hello", None)
    with pytest.raises(TypeError, match="not a number"):
        await b.state_increment("g", "text", 1)


async def test_ttl_expiry_and_live_listing(make_backend: MakeBackend):
    b = await make_backend()
    await b.state_set("sessions", "short", {"u": 1}, 0.2)
    await b.state_set("sessions", "long", {"u": 2}, 3600)
    await b.state_set("sessions", "forever", [1, 2], None)
    assert 3500 < (await b.state_ttl("sessions", "long") or 0) <= 3600
    assert await b.state_ttl("sessions", "forever") is None
    # Updating keeps the expiry the key already had.
    await b.state_update("sessions", "long", lambda v: {**v, "seen": True}, None)
    assert (await b.state_ttl("sessions", "long") or 0) > 3500
    await asyncio.sleep(0.3)
    assert await b.state_get("sessions", "short") == (False, None)
    assert await b.state_list("sessions") == {"forever": [1, 2], "long": {"u": 2, "seen": True}}
    # An expired key starts again from the default, without an expiry.
    assert await b.state_update("sessions", "short", lambda v: (v or 0) + 1, None) == 1
    assert await b.state_ttl("sessions", "short") is None


async def test_groups_clear_and_delete(make_backend: MakeBackend):
    b = await make_backend()
    await b.state_set("a:b", "c", 1, None)  # a group or key may contain the separator
    await b.state_set("a", "b:c", 2, None)
    await b.state_set("gone", "k", 3, 0.05)
    await asyncio.sleep(0.1)
    await b.prune()
    assert await b.state_groups() == ["a", "a:b"]
    assert await b.state_get("a:b", "c") == (True, 1)
    assert await b.state_delete("a", "b:c") is True
    assert await b.state_delete("a", "b:c") is False
    assert await b.state_groups() == ["a:b"]
    await b.state_set("a:b", "d", None, None)
    assert await b.state_clear("a:b") == 2
    assert await b.state_groups() == []
    assert await b.state_list("a:b") == {}
