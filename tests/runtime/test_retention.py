"""Span and log retention holds between sweeps, and the SQLite file gives space back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.backends.sqlite import SQLiteBackend
from app.settings import Settings
from app.types import Batch, Delivery, Message, Outcome, Span

CAP = 100
RUNS = 350

STEPS = {
    "tick_step.py": """
        config = {"type": "event", "name": "Tick", "subscribes": ["tick"]}

        async def handler(data, ctx):
            ctx.logger.info("tick", i=data["i"])
    """,
}


async def test_spans_beyond_the_cap_are_trimmed_as_they_are_written(make_app):
    # No prune sweep runs in this test: the cap has to hold through the writes alone.
    async with make_app(STEPS, trace_retention=CAP, log_retention=CAP) as app:
        for i in range(RUNS):
            await app.emit("tick", {"i": i})
        await app.drain()
        spans = await app.runtime.backend.spans(limit=10 * RUNS)
        assert len(spans) == CAP
        logs = await app.runtime.backend.logs(limit=10 * RUNS)
        assert [e.fields["i"] for e in logs] == list(range(RUNS - 1, RUNS - CAP - 1, -1))
        # What the Workbench's step view and trace view ask for still finds the newest runs.
        detail = (await app.get("/workbench/api/steps/Tick?runs=5")).json()
        newest = detail["runs"]
        assert len(newest) == 5 and newest == sorted(newest, key=lambda s: -s["started_at"])
        assert newest[0]["trace_id"] == logs[0].trace_id
        trace = (await app.get(f"/_stepline/traces/{newest[0]['trace_id']}")).json()
        assert [s["step"] for s in trace["spans"]] == ["Tick"]


async def test_a_new_sqlite_file_shrinks_after_a_backlog_is_settled(tmp_path: Path):
    db = tmp_path / "stepline.db"
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    try:
        # A backlog of large deliveries, then all of them acknowledged: pages fall free.
        blob = "x" * 2000
        messages = [Message("t", {"i": i, "pad": blob}, "tr", ("A",)) for i in range(6000)]
        await backend.write(Batch(messages=messages))
        claimed = await backend.claim({"A": 6000}, {"A": 60.0})
        assert len(claimed) == 6000
        await backend.write(Batch(outcomes=[Outcome(d, "ok") for d in claimed]))
        before = _pages(db)
        await backend.prune()
        after = _pages(db)
        assert after < before / 2, (before, after)
        # Still a working queue after the file shrank.
        await backend.write(Batch(messages=[Message("t", {"i": -1}, "tr", ("A",))]))
        [again] = await backend.claim({"A": 10}, {"A": 60.0})
        assert isinstance(again, Delivery) and again.data == {"i": -1}
    finally:
        await backend.close()


def _pages(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


async def test_spans_of_a_database_from_before_span_rows_are_kept(tmp_path: Path):
    # The layout of earlier versions: a row per span. Upgrading keeps its traces readable.
    db = tmp_path / "stepline.db"
    _old_database(
        db,
        [
            ("s1", "old", "A", "event", "t", 1, 100.0, 2.5, "ok", None, '["u"]'),
            ("s2", "old", "B", "event", "u", 2, 101.0, 1.0, "failed", "boom", "[]"),
        ],
    )
    backend = SQLiteBackend(Settings(db=db))
    await backend.open()
    try:
        newest, oldest = await backend.spans(trace_id="old")
        assert (oldest.step, oldest.emitted, oldest.duration_ms) == ("A", ["u"], 2.5)
        assert (newest.step, newest.status, newest.error, newest.attempt) == (
            "B",
            "failed",
            "boom",
            2,
        )
        # And new spans go on after them.
        await backend.write(Batch(spans=[Span("new", "C", "event", 102.0)]))
        assert [s.step for s in await backend.spans()] == ["C", "B", "A"]
        assert [s.step for s in await backend.spans(status="failed")] == ["B"]
    finally:
        await backend.close()
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "spans" not in tables


async def test_the_span_cap_holds_exactly_across_a_commit_of_many_spans(tmp_path: Path):
    backend = SQLiteBackend(Settings(db=tmp_path / "stepline.db", trace_retention=CAP))
    await backend.open()
    try:
        # Commits of 30 spans: the cap of 100 falls inside a commit's spans.
        for c in range(5):
            spans = [Span(f"t{c}-{i}", "S", "event", c * 100.0 + i) for i in range(30)]
            await backend.write(Batch(spans=spans))
        kept = await backend.spans(limit=1000)
        assert len(kept) == CAP
        assert kept[0].trace_id == "t4-29" and kept[-1].trace_id == "t1-20"
        assert [s.trace_id for s in await backend.spans(trace_id="t1-20")] == ["t1-20"]
        assert await backend.spans(trace_id="t1-19") == []
        assert len(await backend.spans(step="S", limit=7)) == 7
    finally:
        await backend.close()


async def test_many_spans_of_an_older_database_are_kept_in_order_within_the_cap(tmp_path: Path):
    db = tmp_path / "stepline.db"
    old = [
        (f"s{i}", f"t{i}", "S", "event", "t", 1, float(i), 1.0, "ok", None, "[]")
        for i in range(1234)
    ]
    _old_database(db, old)
    backend = SQLiteBackend(Settings(db=db, trace_retention=1000))
    await backend.open()
    try:
        kept = await backend.spans(limit=5000)
        assert [s.span_id for s in kept] == [f"s{i}" for i in range(1233, 233, -1)]
        assert [s.span_id for s in await backend.spans(trace_id="t234")] == ["s234"]
        assert await backend.spans(trace_id="t233") == []
    finally:
        await backend.close()


def _old_database(db: Path, spans: list[tuple[object, ...]]) -> None:
    """A database in the layout of versions before span rows: a row per span."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE spans (seq INTEGER PRIMARY KEY AUTOINCREMENT, span_id TEXT NOT NULL, "
            "trace_id TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, topic TEXT, "
            "attempt INTEGER NOT NULL, started_at REAL NOT NULL, duration_ms REAL NOT NULL, "
            "status TEXT NOT NULL, error TEXT, emitted TEXT NOT NULL)"
        )
        conn.execute("CREATE INDEX spans_step ON spans (step, seq)")
        conn.executemany(
            "INSERT INTO spans (span_id, trace_id, step, kind, topic, attempt, started_at, "
            "duration_ms, status, error, emitted) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            spans,
        )
