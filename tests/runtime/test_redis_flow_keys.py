"""Flow-control keys on the Redis backend: keyed deliveries and rate limits, including the
layouts earlier versions left in Redis (deliveries in flight during an upgrade keep their turn).

Several backend objects on one prefix stand for several Stepline processes, as in
test_redis_backend.py.
"""

from __future__ import annotations

import time

import redis

from app.types import Batch, FlowPlan, Message, Outcome
from tests.runtime.redis_support import REDIS_MARKS, URL, MakeBackend, claim_all, msg

pytestmark = REDIS_MARKS


async def test_keys_of_any_text_keep_their_order_one_at_a_time(make_backend: MakeBackend):
    # Keys travel as lines of one argument unless they hold a tab or a newline: both kinds,
    # mixed in one commit, wait for their key's turn and let the next go when settled.
    a, b = await make_backend(), await make_backend()
    keys = ["pr/1", "tab\there", "line\nbreak", "ünï/2"]

    def keyed(i: int) -> Message:
        plan = FlowPlan(key=keys[i % 4], limit=1)
        return Message("topic", {"i": i}, f"trace-{i}", ("A",), partitions={"A": plan})

    await a.write(Batch(messages=[keyed(i) for i in range(12)]))
    seen: list[int] = []
    for turn in range(3):
        got = await claim_all(b, "A")
        assert sorted(d.data["i"] for d in got) == [4 * turn + k for k in range(4)]
        assert {d.key for d in got} == set(keys) and await claim_all(a, "A") == []
        seen += [d.data["i"] for d in got]
        await a.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
    assert sorted(seen) == list(range(12))
    assert await a.pending() == 0 and await claim_all(b, "A") == []
    # A second acknowledgement of a settled delivery lets nothing else go.
    await a.write(Batch(messages=[keyed(0), keyed(4)]))
    [first] = await claim_all(a, "A")
    await a.write(Batch(outcomes=[Outcome(first, "ok"), Outcome(first, "ok")]))
    [second] = await claim_all(a, "A")
    assert second.data == {"i": 4}
    await a.write(Batch(messages=[keyed(8)]))
    await a.write(Batch(outcomes=[Outcome(first, "ok")]))
    assert await claim_all(b, "A") == []


async def test_keyed_deliveries_of_an_earlier_version_keep_their_turns(make_backend: MakeBackend):
    # An earlier version counted only the deliveries let go (P:ka) and popped the key's list
    # on each settlement; those in flight during an upgrade still go one at a time, in order.
    a, b = await make_backend(), await make_backend()

    def keyed(i: int) -> Message:
        plan = FlowPlan(key="pr/7", limit=1)
        return Message("topic", {"i": i}, f"trace-{i}", ("A",), partitions={"A": plan})

    await a.write(Batch(messages=[keyed(i) for i in range(3)]))
    r = redis.Redis.from_url(URL)
    # The same layout in the older count: one let go, two waiting in the key's list.
    r.delete(f"{a.prefix}:kn:A")
    r.hset(f"{a.prefix}:ka:A", "pr/7", 1)
    await b.write(Batch(messages=[keyed(3)]))  # placed while the older count is in use
    seen: list[int] = []
    for _ in range(4):
        got = await claim_all(b, "A")
        assert len(got) == 1 and await claim_all(a, "A") == []
        seen.append(got[0].data["i"])
        await a.write(Batch(outcomes=[Outcome(got[0], "ok")]))
    assert seen == [0, 1, 2, 3] and await claim_all(b, "A") == []
    assert not r.exists(f"{a.prefix}:ka:A")  # drained: from now on the new count
    await a.write(Batch(messages=[keyed(4), keyed(5)]))
    assert [d.data["i"] for d in await claim_all(b, "A")] == [4]
    assert r.hget(f"{a.prefix}:kn:A", "pr/7") == b"2" and not r.exists(f"{a.prefix}:ka:A")
    r.close()


async def test_a_rate_limit_counts_the_claims_of_an_earlier_version(make_backend: MakeBackend):
    # Earlier versions kept one member per claimed delivery and no total: they still count.
    a, b = await make_backend(), await make_backend()
    for backend in (a, b):
        backend.rate_limits = {"A": (5, 60.0, False)}
    r = redis.Redis.from_url(URL)
    now = time.time()
    r.zadd(f"{a.prefix}:rl:A", {"1:1": now, "2:1": now, "3:1": now - 120})
    await a.write(Batch(messages=[msg(i) for i in range(10)]))
    assert len(await claim_all(b, "A")) == 3  # 5 a minute, 2 of them taken already
    assert await claim_all(a, "A") == []
    r.delete(f"{a.prefix}:rl:A", f"{a.prefix}:rln:A")
    r.close()
    assert len(await claim_all(a, "A")) == 5


async def test_a_commit_placing_and_settling_several_of_a_key_keeps_its_limit(
    make_backend: MakeBackend,
):
    # A commit places its keyed deliveries of a step together and settles them together:
    # several of one key in one commit still go `limit` at a time, in emit order, and a key
    # whose deliveries have all settled is no longer counted.
    a, b = await make_backend(), await make_backend()
    limits = {"two": 2, "one": 1}

    def keyed(i: int, key: str) -> Message:
        plan = FlowPlan(key=key, limit=limits[key])
        return Message("topic", {"i": i, "k": key}, f"trace-{i}", ("A",), partitions={"A": plan})

    await a.write(Batch(messages=[keyed(i, "two" if i % 3 else "one") for i in range(9)]))
    # one: 0, 3, 6; two: 1, 2, 4, 5, 7, 8
    order: dict[str, list[int]] = {"one": [], "two": []}
    turns = []
    while True:
        got = await claim_all(b, "A")
        if not got:
            break
        by_key = {k: [d.data["i"] for d in got if d.key == k] for k in limits}
        assert all(len(by_key[k]) <= limits[k] for k in limits)
        turns.append(by_key)
        for k in limits:
            order[k] += sorted(by_key[k])
        await a.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
    assert order == {"one": [0, 3, 6], "two": [1, 2, 4, 5, 7, 8]}
    assert turns[0] == {"one": [0], "two": [1, 2]}  # each key up to its limit at once
    assert len(turns) == 3 and await a.pending() == 0
    r = redis.Redis.from_url(URL)
    assert r.hget(f"{a.prefix}:kn:A", "one") is None and r.hget(f"{a.prefix}:kn:A", "two") is None
    r.close()


async def test_a_per_key_rate_limit_counts_an_earlier_versions_claims_and_forgets_quiet_keys(
    make_backend: MakeBackend,
):
    # Earlier versions kept each key's claims in a set with an expiry and no index of keys:
    # in the first window those still count. Keys quiet for a window leave the index, and
    # their sets expire.
    a, b = await make_backend(), await make_backend()
    now = [time.time()]
    for backend in (a, b):
        backend.rate_limits = {"A": (2, 60.0, True)}
        backend.clock = lambda: now[0]
    keys = ["acct", "other", 'we"ird\\key/ü']

    def call(i: int, rk: str) -> Message:
        plan = FlowPlan(rate_key=rk)
        return Message("topic", {"i": i}, f"trace-{i}", ("A",), partitions={"A": plan})

    r = redis.Redis.from_url(URL)
    # A prefix an earlier version used: its claims, and no mark of this version's layout.
    r.delete(f"{a.prefix}:rkv")
    r.zadd(f"{a.prefix}:rk:1:A:acct", {"0-1": now[0] - 5, "0-2": now[0] - 1})
    r.pexpire(f"{a.prefix}:rk:1:A:acct", 61_000)
    await a.write(Batch(messages=[call(i, keys[i % 3]) for i in range(9)]))
    got = await claim_all(b, "A")
    assert sorted(d.data["i"] for d in got) == [1, 2, 4, 5]  # acct's window is spent
    assert await claim_all(a, "A") == []
    await a.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
    now[0] += 61  # the next window: two more of each key, the earlier claims forgotten
    got = await claim_all(a, "A")
    assert sorted(d.data["i"] for d in got) == [0, 3, 7, 8]
    await a.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
    now[0] += 61
    [last] = await claim_all(b, "A")
    assert last.data["i"] == 6
    now[0] += 61
    assert await claim_all(b, "A") == []
    # Every key has been quiet for a window: none is indexed, and any claim set expires.
    assert r.zcard(f"{a.prefix}:rki:A") == 0
    assert all(0 < r.pttl(k) <= 61_000 for k in r.scan_iter(f"{a.prefix}:rk:*"))
    r.close()


async def test_a_per_key_rate_limit_of_one_spaces_a_keys_claims_a_window_apart(
    make_backend: MakeBackend,
):
    # A key's first claim in a window is kept in the index of keys alone: a second one of
    # that key waits for the window, and so does a third, one window later.
    a = await make_backend()
    now = [time.time()]
    a.rate_limits = {"A": (1, 1.0, True)}
    a.clock = lambda: now[0]
    calls = [("x", 0), ("y", 1), ("x", 2), ("x", 3)]
    await a.write(
        Batch(
            messages=[
                Message("topic", {"i": i}, f"t-{i}", ("A",), partitions={"A": FlowPlan(rate_key=k)})
                for k, i in calls
            ]
        )
    )
    start = now[0]
    seen = []
    for step in range(4):
        now[0] = start + step * 1.01
        got = await claim_all(a, "A")
        seen.append(sorted(d.data["i"] for d in got))
        await a.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
    assert seen == [[0, 1], [2], [3], []]
