"""Redis-only behaviour of the Redis backend, against the Redis on 127.0.0.1:6379.

Several backend objects on one prefix stand for several Stepline processes: each has its own
connection pool and consumer name, exactly as separate processes would. Every test uses its own
key prefix and deletes its keys afterwards, since that Redis is shared and not reset between runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable

import pytest
import redis

from app.backends.redis import RedisBackend
from app.settings import Settings
from app.types import Batch, Delivery, LogEntry, Message, Outcome, Span
from tests.runtime.redis_support import (
    REDIS_MARKS,
    URL,
    MakeBackend,
    RedisServer,
    claim_all,
    msg,
    new_prefix,
)

pytestmark = REDIS_MARKS


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# -- queue -----------------------------------------------------------------------------------
async def test_two_processes_share_a_step_without_handing_out_a_delivery_twice(
    make_backend: MakeBackend,
):
    a, b = await make_backend(), await make_backend()
    await a.write(Batch(messages=[msg(i) for i in range(500)]))
    got_a, got_b = await asyncio.gather(
        *(asyncio.gather(*(p.claim({"A": 50}, {"A": 30}) for _ in range(10))) for p in (a, b))
    )
    ids = [d.id for batch in (*got_a, *got_b) for d in batch]
    assert len(ids) == 500 and len(set(ids)) == 500
    assert await a.pending("A") == 500  # claimed is not settled


async def test_ack_settles_and_emits_commit_with_it(make_backend: MakeBackend):
    backend = await make_backend()
    await backend.write(Batch(messages=[msg(1, ("A",))]))
    [d] = await claim_all(backend, "A")
    assert d.attempt == 1 and d.data == {"i": 1} and d.trace_id == "trace-1"
    await backend.write(Batch(messages=[msg(2, ("B", "C"))], outcomes=[Outcome(d, "ok")]))
    assert await backend.pending("A") == 0
    assert await backend.pending() == 2
    assert [x.data for x in await claim_all(backend, "B")] == [{"i": 2}]


async def test_a_crashed_consumers_delivery_is_reclaimed_after_its_lease(make_backend: MakeBackend):
    crashed, survivor = await make_backend(), await make_backend()
    await crashed.write(Batch(messages=[msg(1)]))
    [first] = await claim_all(crashed, "A", lease=0.3)
    assert await claim_all(survivor, "A", lease=0.3) == []  # still leased

    async def taken_over() -> bool:
        got = await claim_all(survivor, "A", lease=0.3)
        taken.extend(got)
        return bool(got)

    taken: list[Delivery] = []
    await wait_for(taken_over, "the expired lease to be reclaimed")
    assert [(d.id, d.attempt) for d in taken] == [(first.id, 2)]
    # The crashed process's late acknowledgement must not settle it twice or resurrect it.
    await survivor.write(Batch(outcomes=[Outcome(taken[0], "ok")]))
    await crashed.write(Batch(outcomes=[Outcome(first, "retry", retry_at=0)]))
    assert await survivor.pending() == 0


async def test_retry_waits_for_its_time_and_counts_attempts(make_backend: MakeBackend):
    backend = await make_backend()
    await backend.write(Batch(messages=[msg(1), msg(2)]))
    d1, d2 = await claim_all(backend, "A")
    await backend.write(
        Batch(
            outcomes=[
                Outcome(d1, "retry", retry_at=time.time() + 3600),
                Outcome(d2, "retry", retry_at=time.time() - 1),
            ]
        )
    )
    stats = (await backend.queue_stats())["A"]
    # The one already due is queued, though no claim has moved it back to the stream yet.
    assert (stats["queued"], stats["scheduled"], stats["in_flight"]) == (1, 1, 0)
    assert await backend.pending("A") == 2
    [due] = await claim_all(backend, "A")
    assert due.data == {"i": 2} and due.attempt == 2
    assert await claim_all(backend, "A") == []  # the other one is not due for an hour
    [row] = [r for r in await backend.queued() if r["status"] == "scheduled"]
    assert row["data"] == {"i": 1} and row["attempt"] == 1
    await backend.write(Batch(outcomes=[Outcome(due, "retry", retry_at=0)]))
    [third] = await claim_all(backend, "A")
    assert third.attempt == 3


async def test_dead_letter_keeps_the_error_and_replay_starts_over(make_backend: MakeBackend):
    a, b = await make_backend(), await make_backend()
    await a.write(Batch(messages=[msg(1), msg(2)]))
    d1, d2 = await claim_all(a, "A")
    await a.write(
        Batch(
            outcomes=[
                Outcome(d1, "dead", error="ValueError: bad", traceback="Traceback ...\nValueError"),
                Outcome(d2, "dead", error="KeyError: x", traceback="tb"),
            ]
        )
    )
    dead = await b.dead_letters()
    assert [(x.data, x.error, x.attempts, x.step) for x in dead] == [
        ({"i": 2}, "KeyError: x", 1, "A"),
        ({"i": 1}, "ValueError: bad", 1, "A"),
    ]
    assert (await b.queue_stats())["A"]["dead"] == 2
    assert await b.replay(["no-such-id"]) == 0
    assert await b.replay([dead[1].id]) == 1
    assert await b.replay([dead[1].id]) == 0  # replayed once only
    [again] = await claim_all(b, "A")
    assert again.data == {"i": 1} and again.attempt == 1 and again.trace_id == "trace-1"
    assert await b.replay(None) == 1
    assert await b.dead_letters() == []


async def test_dead_letters_are_bounded_newest_kept(make_backend: MakeBackend):
    backend = await make_backend(dead_retention=10)
    await backend.write(Batch(messages=[msg(i) for i in range(15)]))
    claimed = await claim_all(backend, "A")
    await backend.write(Batch(outcomes=[Outcome(d, "dead", error="e") for d in claimed]))
    dead = await backend.dead_letters(100)
    assert [x.data["i"] for x in dead] == list(range(14, 4, -1))
    assert (await backend.queue_stats())["A"]["dead"] == 10


async def test_release_makes_work_due_at_once_without_spending_an_attempt(
    make_backend: MakeBackend,
):
    a, b = await make_backend(), await make_backend()
    await a.write(Batch(messages=[msg(1)]))
    [d] = await claim_all(a, "A")
    await a.release([d])
    [again] = await claim_all(b, "A")
    assert again.data == {"i": 1} and again.attempt == 1


async def test_idempotency_keys_hold_across_processes(make_backend: MakeBackend):
    a, b = await make_backend(), await make_backend()
    await a.write(Batch(messages=[msg(1, key="delivery-42")]))
    await b.write(Batch(messages=[msg(2, key="delivery-42"), msg(3, key="delivery-43")]))
    other_topic = Message("other", {"i": 4}, "t", ("A",), "delivery-42")
    await b.write(Batch(messages=[other_topic]))
    assert sorted(d.data["i"] for d in await claim_all(a, "A")) == [1, 3, 4]


async def test_an_emit_key_is_forgotten_after_the_dedup_window(make_backend: MakeBackend):
    backend = await make_backend(dedup_ttl=0.2)
    await backend.write(Batch(messages=[msg(1, key="k")]))
    await asyncio.sleep(0.3)
    await backend.write(Batch(messages=[msg(2, key="k")]))
    assert len(await claim_all(backend, "A")) == 2


async def test_a_claim_that_fails_after_its_commit_leaves_the_commit_done_once(
    make_backend: MakeBackend, caplog
):
    backend = await make_backend()
    await backend.write(Batch(messages=[msg(1, ("A",))]))
    [d] = await claim_all(backend, "A")
    client = redis.Redis.from_url(URL)
    client.set(f"{backend.prefix}:q:Broken", "not a stream")  # the claim of Broken fails
    client.close()
    commit = Batch(messages=[msg(2, ("B",))], outcomes=[Outcome(d, "ok")])
    assert await backend.write_and_claim(commit, {"Broken": 10}, {"Broken": 30}) == []
    assert "claim after a commit failed" in caplog.text
    assert await backend.pending("A") == 0
    assert [x.data for x in await claim_all(backend, "B")] == [{"i": 2}]  # emitted once


# -- cron ------------------------------------------------------------------------------------
async def test_one_process_wins_each_cron_tick(make_backend: MakeBackend):
    backends = [await make_backend() for _ in range(4)]
    tick = 1_700_000_060.0
    wins = await asyncio.gather(
        *(
            b.try_fire("Nightly", tick, Message("cron", {}, f"t{n}", ("Job",)))
            for n, b in enumerate(backends)
            for _ in range(5)
        )
    )
    assert wins.count(True) == 1
    assert len(await claim_all(backends[0], "Job")) == 1
    assert not await backends[1].try_fire("Nightly", tick - 60, msg(0, ("Job",)))
    assert await backends[2].last_fire("Nightly") == tick
    assert await backends[3].try_fire("Nightly", tick + 60, msg(0, ("Job",)))


# -- traces and logs -------------------------------------------------------------------------
async def test_spans_and_logs_are_queryable_and_bounded(make_backend: MakeBackend):
    backend = await make_backend(trace_retention=100, log_retention=100)
    for start in range(0, 150, 50):
        await backend.write(
            Batch(
                spans=[
                    Span(
                        f"tr{i % 3}",
                        f"S{i % 2}",
                        "event",
                        float(i),
                        attempt=1,
                        status="failed" if i == 149 else "ok",
                    )
                    for i in range(start, start + 50)
                ],
                logs=[
                    LogEntry("info", f"line {i}", f"S{i % 2}", f"tr{i % 3}", fields={"i": i})
                    for i in range(start, start + 50)
                ],
            )
        )
    spans = await backend.spans(limit=1000)
    assert [s.started_at for s in spans] == [float(i) for i in range(149, 49, -1)]
    by_trace = await backend.spans(trace_id="tr0", limit=1000)
    assert {s.trace_id for s in by_trace} == {"tr0"} and len(by_trace) == 33  # 51..147 step 3
    by_step = await backend.spans(step="S1", status="failed")
    assert [s.started_at for s in by_step] == [149.0]
    logs = await backend.logs(trace_id="tr1", step="S0", limit=5)
    assert [e.fields["i"] for e in logs] == [148, 142, 136, 130, 124]
    assert len(await backend.logs(limit=1000)) == 100
    # Six keys hold them whatever the traffic (no key per trace or step), and a trace with a
    # tab or newline in its id is stored and found like any other.
    client = redis.Redis.from_url(URL, decode_responses=True)
    keys = {k.removeprefix(backend.prefix) for k in client.scan_iter(f"{backend.prefix}:*")}
    assert keys == {":sc", ":scz", ":scn", ":scseq", ":lc", ":lcz", ":lcn", ":lcseq"}
    client.close()
    odd = "tr\t0\n\\x"
    await backend.write(
        Batch(spans=[Span(odd, "S0", "event", 500.0), Span("tr0", "S0", "event", 501.0)])
    )
    assert [s.started_at for s in await backend.spans(trace_id=odd)] == [500.0]
    # Trimmed a commit at a time: the newest 100 stay, and no more than one commit beyond.
    assert len(await backend.spans(trace_id="tr0", limit=1000)) == 33 + 1
    assert len(await backend.spans(limit=1000)) == 102


async def test_a_prune_drops_the_span_rows_of_earlier_versions(make_backend: MakeBackend):
    backend = await make_backend()
    p = backend.prefix
    client = redis.Redis.from_url(URL, decode_responses=True)
    # As versions before records went a commit at a time left them: a row and index per span.
    for kind in ("sp", "lg"):
        client.hset(f"{p}:{kind}", "1", "[]")
        client.zadd(f"{p}:{kind}z", {"1\ntr\nS": 1})
        client.set(f"{p}:{kind}seq", 1)
        client.zadd(f"{p}:{kind}t:tr", {"1": 1})
        client.zadd(f"{p}:{kind}s:S", {"1": 1})
    await backend.write(Batch(spans=[Span("tr", "S", "event", 1.0)]))
    await backend.prune()
    keys = {k.removeprefix(p) for k in client.scan_iter(f"{p}:*")}
    client.close()
    assert keys == {":sc", ":scz", ":scn", ":scseq"}
    assert [s.trace_id for s in await backend.spans()] == ["tr"]


# -- stream fan-out --------------------------------------------------------------------------
async def test_stream_updates_reach_subscribers_on_other_processes(make_backend: MakeBackend):
    server, worker = await make_backend(), await make_backend()
    received: list[dict[str, object]] = []

    async def listen() -> None:
        async for item in server.subscribe("progress"):
            received.append(item)
            if item.get("n") == 2:
                return

    task = asyncio.create_task(listen())

    async def warmed_up() -> bool:
        # Pub/sub keeps nothing: publish a marker until the subscription proves it is live.
        await worker.publish("progress", {"warm": True})
        await asyncio.sleep(0.02)
        return bool(received)

    await wait_for(warmed_up, "the subscription on the other process")
    await worker.publish("other", {"n": 0})
    await worker.publish("progress", {"n": 1, "trace_id": "t"})
    await worker.publish("progress", {"n": 2})
    await asyncio.wait_for(task, 5)
    assert [r for r in received if "warm" not in r] == [{"n": 1, "trace_id": "t"}, {"n": 2}]


async def test_purge_removes_this_apps_keys_only():
    base = new_prefix()
    apps = [
        RedisBackend(Settings(REDIS_URL=URL, redis_prefix=p))
        for p in (base, base + "x", base + "*")
    ]
    for app in apps:
        await app.open()
        await app.state_set("g", "k", app.prefix, None)
        await app.write(Batch(messages=[msg(1)]))
    try:
        assert await apps[2].purge() > 0  # a glob character in a prefix is taken literally
        assert await apps[0].state_get("g", "k") == (True, base)
        assert await apps[0].purge() > 0
        assert await apps[1].state_get("g", "k") == (True, base + "x")
        assert await apps[0].pending() == 0 and await apps[1].pending() == 1
    finally:
        for app in apps:
            await app.purge()
            await app.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
async def test_only_a_serving_process_warns_of_a_redis_without_appendonly(
    tmp_path, caplog, monkeypatch
):
    server = RedisServer(tmp_path, "--appendonly", "no")
    server.start()
    opened: list[RedisBackend] = []

    async def process(**settings: object) -> RedisBackend:
        backend = RedisBackend(Settings(REDIS_URL=server.url, redis_prefix="w", **settings))
        await backend.open()
        opened.append(backend)
        return backend

    def warnings() -> int:
        return sum("appendonly no" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.WARNING, logger="stepline.redis")
    try:
        # A one-shot command (`stepline emit`, `state get`, `steps`) writes and reads only.
        one_shot = await process()
        await one_shot.write(Batch(messages=[msg(1)]))
        assert await one_shot.state_get("g", "k") == (False, None)
        assert await one_shot.pending("A") == 1
        assert warnings() == 0
        served = await process()  # `stepline start` or `dev`; warned once
        served.serving()
        served.serving()
        await served.claim({"A": 10}, {"A": 30})
        assert warnings() == 1
        monkeypatch.setenv("STEPLINE_PARENT_PID", str(os.getpid()))
        pool_worker = await process(mode="worker")
        pool_worker.serving()  # a worker of `start --workers N`: its parent warns
        assert warnings() == 1
    finally:
        for backend in opened:
            await backend.close()
        server.stop()
