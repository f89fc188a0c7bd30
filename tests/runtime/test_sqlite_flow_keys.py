"""Flow-control rate limits on the SQLite backend, including the rows earlier versions left in
`rate_log` (claims made before an upgrade still count in their window), and the per-key claims
each backend reads from `rate_claims` (another process's, a restarted one's, none rolled back).

Several backend objects on one file stand for several Stepline processes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from app.backends.sqlite import SQLiteBackend
from app.errors import BackendError
from app.settings import Settings
from app.types import Batch, FlowPlan, Message, Outcome


async def test_a_rate_limit_counts_an_earlier_versions_rows_and_logs_one_row_per_claim(
    tmp_path: Path,
):
    # Earlier versions logged one rate_log row per claimed delivery (no count); a claim is
    # now one row with its count. Both count toward the window.
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    backend.rate_limits = {"A": (5, 60.0, False)}
    await backend.open()
    try:
        now = time.time()
        with sqlite3.connect(db) as conn:
            conn.executemany(
                "INSERT INTO rate_log (step, at) VALUES ('A', ?)", [(now - 2,), (now - 1,)]
            )
        messages = [Message("topic", {"i": i}, f"t-{i}", ("A",)) for i in range(10)]
        await backend.write(Batch(messages=messages))
        assert len(await backend.claim({"A": 10}, {"A": 30.0})) == 3  # 2 of 5 taken already
        assert await backend.claim({"A": 10}, {"A": 30.0}) == []
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT n FROM rate_log WHERE step = 'A' ORDER BY at").fetchall()
        assert rows == [(None,), (None,), (3,)]
    finally:
        await backend.close()


def _call(i: int, rk: str) -> Message:
    return Message("topic", {"i": i}, f"t-{i}", ("A",), partitions={"A": FlowPlan(rate_key=rk)})


async def _claimed(backend: SQLiteBackend) -> list[int]:
    got = await backend.claim({"A": 1000}, {"A": 30.0})
    await backend.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
    return sorted(d.data["i"] for d in got)


async def test_a_per_key_rate_limit_holds_across_backends_restarts_and_an_earlier_versions_rows(
    tmp_path: Path,
):
    # Two backends on one file stand for two processes; each keeps what it has read of the
    # window's claims and reads the others' from the file. Earlier versions logged one
    # rate_log row per delivery under its key: those still count in their window.
    db = tmp_path / "stepline.db"
    now = [time.time()]

    async def opened() -> SQLiteBackend:
        backend = SQLiteBackend(Settings(db=db))
        backend.rate_limits = {"A": (2, 60.0, True)}
        backend.clock = lambda: now[0]
        await backend.open()
        return backend

    a, b = await opened(), await opened()
    try:
        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO rate_log (step, rkey, at) VALUES ('A', 'acct', ?)", (now[0] - 5,)
            )
        keys = ["acct", "other", 'we"ird\\key/ü']
        await a.write(Batch(messages=[_call(i, keys[i % 3]) for i in range(12)]))
        assert await _claimed(b) == [0, 1, 2, 4, 5]  # acct had one claim left
        assert await _claimed(a) == [] and await _claimed(b) == []
        # A restarted process reads the window back from the file.
        await a.close()
        a = await opened()
        assert await _claimed(a) == []
        now[0] += 56  # the earlier version's claim leaves the window, this one's not yet
        assert await _claimed(a) == [3]
        assert await _claimed(b) == []
        now[0] += 5
        # The rest of the window's turns; acct's third waits a window after its first.
        assert await _claimed(b) == [6, 7, 8, 10, 11]
        now[0] += 61
        assert await _claimed(a) == [9]
        now[0] += 61
        assert await _claimed(a) == [] and await a.pending() == 0
        # Every claim has left the window: nothing of it is kept in the file.
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM rate_claims").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM rate_log").fetchone() == (0,)
        # A claim made after that is still one neither process has read (its id is new).
        await a.write(Batch(messages=[_call(i, "q") for i in (12, 13)]))
        assert await _claimed(b) == [12, 13]
        await a.write(Batch(messages=[_call(14, "q")]))
        assert await _claimed(a) == []
    finally:
        await a.close()
        await b.close()


async def test_a_per_key_claim_that_rolls_back_counts_nothing_and_misses_no_later_claim(
    tmp_path: Path,
):
    # A claim that fails after A's part (B's part is refused) is rolled back with A's
    # rate_claims row, whose id the next committed claim may take again: the backend that
    # failed must count that one.
    db = tmp_path / "stepline.db"
    a, b = SQLiteBackend(Settings(db=db)), SQLiteBackend(Settings(db=db))
    for backend in (a, b):
        backend.rate_limits = {"A": (1, 60.0, True)}
        await backend.open()
    try:
        assert await _claimed(a) == []  # a has read the window (empty)
        calls = [_call(i, k) for i, k in enumerate("xxyy")]
        await a.write(Batch(messages=[*calls, Message("topic", {}, "t-b", ("B",))]))
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TRIGGER refuse AFTER UPDATE ON deliveries WHEN NEW.step = 'B' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with pytest.raises(BackendError, match="refused"):
            await a.claim({"A": 10, "B": 10}, {"A": 30.0, "B": 30.0})  # x and y taken, undone
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TRIGGER refuse")
        await a.write(Batch(messages=[_call(4, "z")]))
        assert await _claimed(b) == [0, 2, 4]  # the rolled-back claim counted for nobody
        await a.write(Batch(messages=[_call(5, "z")]))
        assert await _claimed(a) == []  # nor does b's claim go uncounted by a
    finally:
        await a.close()
        await b.close()


async def test_claims_too_few_to_fill_any_key_still_count_per_key_once_they_could(
    tmp_path: Path,
):
    # While the window's claims and the claim's size stay within the limit, no key can pass
    # it and a claim looks at no key; the keys of those claims (and of an earlier version's
    # rows, which do not say how many they hold) count once a claim could take one past it.
    db = tmp_path / "stepline.db"
    now = [time.time()]
    backends = []
    for _ in range(2):
        backend = SQLiteBackend(Settings(db=db))
        backend.rate_limits = {"A": (5, 60.0, True)}
        backend.clock = lambda: now[0]
        await backend.open()
        backends.append(backend)
    a, b = backends

    async def claimed(backend: SQLiteBackend, n: int) -> list[int]:
        got = await backend.claim({"A": n}, {"A": 30.0})
        await backend.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
        return sorted(d.data["i"] for d in got)

    try:
        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO rate_claims (step, at, keys) VALUES ('A', ?, '[\"k\"]')", (now[0],)
            )
        await a.write(Batch(messages=[_call(i, "k") for i in range(3)]))
        assert await claimed(a, 2) == [0, 1]
        assert await claimed(b, 1) == [2]  # k has 4 of its 5
        await a.write(Batch(messages=[_call(i, "k" if i < 6 else "j") for i in range(3, 8)]))
        assert await claimed(b, 10) == [3, 6, 7]
        assert await claimed(a, 10) == []
        now[0] += 61
        assert await claimed(a, 1) == [4]  # fewer than the limit again: k's turn at once
        assert await claimed(b, 10) == [5]
        assert await a.pending() == 0
    finally:
        await a.close()
        await b.close()


async def test_an_earlier_versions_row_counts_each_key_it_holds_toward_the_window(
    tmp_path: Path,
):
    # An earlier version's row says how many claims it holds only by its keys (n NULL), one
    # key as many times as the claim took it: all of them count toward the window, so the
    # claim that would take k past its limit looks at its keys. Counted as one row, the
    # window would seem to have room for this claim without looking, and k would get 4 of 3.
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    backend.rate_limits = {"A": (3, 60.0, True)}
    now = time.time()
    backend.clock = lambda: now
    await backend.open()
    try:
        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO rate_claims (step, at, keys) VALUES ('A', ?, '[\"k\",\"k\"]')",
                (now - 1,),
            )
        await backend.write(Batch(messages=[_call(i, "k") for i in range(3)]))
        got = await backend.claim({"A": 2}, {"A": 30.0})
        assert sorted(d.data["i"] for d in got) == [0]  # k had one of its 3 left
        await backend.write(Batch(outcomes=[Outcome(d, "ok") for d in got]))
        assert await _claimed(backend) == []
    finally:
        await backend.close()
