"""Spans in the SQLite backend: one compact row per commit, not a row per run.

A row per span (eleven columns and an index on its step) made each run's span a B-tree insert
into two trees and, through the trim, a delete from both: about 10 µs of CPU per span, more
than a third of a chain delivery's own SQLite work. A commit's spans are now one row: `body` is
a JSON array of span arrays (`_FIELDS`, in commit order), and `seq` is the running number of
the row's last span, so a row holds spans `seq - n + 1 .. seq` and the rowid counts spans.
That keeps retention exact with the same rowid-range trim as before (a row goes once all its
spans are past the cap) and readers drop the older spans of the row that straddles the cap.

Reads scan the rows newest first; a trace, step or status asked for is looked up first as its
JSON text inside `body` (`instr`, in SQLite's C), which passes every row holding it and few
others, and each span of a row that passes is then checked exactly. The table is bounded by the
span cap (10,000 spans by default, about 1.5 MB of JSON), so a full scan stays a few ms.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from app.backends.codec import dump_records, load
from app.types import Span

__all__ = ["SPAN_SCHEMA", "migrate_span_rows", "read_spans", "store_spans"]

SPAN_SCHEMA = """
CREATE TABLE IF NOT EXISTS span_rows (
    seq INTEGER PRIMARY KEY,
    n INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""
"""`seq`: the number of the row's last span, counted over the table's life; `n`: its spans."""

_FIELDS = (
    "span_id, trace_id, step, kind, topic, attempt, started_at, duration_ms, status, error, emitted"
)
_fields = attrgetter(*_FIELDS.split(", "))  # one C call per span for its eleven fields
_INSERT = (
    "INSERT INTO span_rows (seq, n, body) "
    "VALUES ((SELECT COALESCE(MAX(seq), 0) FROM span_rows) + ?, ?, ?)"
)


def store_spans(conn: sqlite3.Connection, spans: Sequence[Span]) -> None:
    """Add `spans` (one commit's) as one row. Text the database cannot store (a lone
    surrogate) fails the write as a span column did, so the writer stores that span's text
    escaped instead (app/writer.py)."""
    body = dump_records(list(map(_fields, spans)))  # tuples: JSON arrays all the same
    conn.execute(_INSERT, (len(spans), len(spans), body))


def read_spans(
    conn: sqlite3.Connection,
    keep: int,
    *,
    trace_id: str | None = None,
    step: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[Span]:
    """The newest `limit` spans matching every filter given, newest first, among the newest
    `keep` (the cap, exact even before a trim has caught up with it)."""
    wanted = [(2, step), (1, trace_id), (8, status)]
    wanted = [(i, v) for i, v in wanted if v]
    out: list[Span] = []
    try:
        texts = tuple(dump_records(v) for _, v in wanted)
    except ValueError:  # a lone surrogate: no stored span holds one (see store_spans)
        return out
    if limit <= 0:
        return out
    where = " AND ".join("instr(body, ?) > 0" for _ in wanted)
    cur = conn.execute(
        "SELECT seq, n, body, (SELECT MAX(seq) FROM span_rows) FROM span_rows "
        f"{'WHERE ' + where if where else ''} ORDER BY seq DESC",
        texts,
    )
    for seq, n, body, top in cur:
        floor = top - keep  # spans numbered up to this are past the cap
        if seq <= floor:
            break
        rows: list[list[Any]] = load(body)
        first = seq - n + 1
        for i in range(len(rows) - 1, -1, -1):
            if first + i <= floor:
                break
            r = rows[i]
            if wanted and not all(r[k] == v for k, v in wanted):
                continue
            out.append(Span(r[1], r[2], r[3], r[6], r[0], r[4], r[5], r[7], r[8], r[9], r[10]))
            if len(out) >= limit:
                return out
    return out


# Old spans per new row: one row of them all (a larger cap's million spans, say) would be held
# in memory whole to be written, and decoded whole by every read that reaches it.
_MOVED_PER_ROW = 500


def migrate_span_rows(conn: sqlite3.Connection) -> None:
    """Move the spans of a database written before span rows (table `spans`, a row per span)
    into span rows of `_MOVED_PER_ROW` spans, in their order, and drop the old table. Processes
    of the older version must be stopped first: they write to the old table."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spans'"
        ).fetchone()
        if old is not None:
            cur = conn.execute(f"SELECT {_FIELDS} FROM spans ORDER BY seq")
            while rows := cur.fetchmany(_MOVED_PER_ROW):
                store_spans(conn, [_old_span(r) for r in rows])
            conn.execute("DROP TABLE spans")
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def _old_span(r: Sequence[Any]) -> Span:
    """A row of the old `spans` table (`_FIELDS`; `emitted` as JSON text)."""
    return Span(r[1], r[2], r[3], r[6], r[0], r[4], r[5], r[7], r[8], r[9], load(r[10]))
