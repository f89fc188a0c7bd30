"""Payloads through the SQLite backend's JSON codec come back as they were emitted, and what
JSON cannot carry is refused with the reason."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.backends.sqlite import SQLiteBackend
from app.settings import Settings
from app.types import Batch, Message, Span

ODD = {
    "word": "NaN and Infinity",
    "big": 2**100,
    "small": 5e-324,
    "tenth": 0.1 + 0.2,
    "text": "naïve 日本 \U0001f600",
    "lone": "a\ud800b",
    "nested": [None, True, {"k": []}],
}


async def test_odd_payloads_round_trip_and_non_finite_ones_are_refused(tmp_path: Path):
    backend = SQLiteBackend(Settings(db=tmp_path / "stepline.db"))
    await backend.open()
    try:
        await backend.write(Batch(messages=[Message("t", ODD, "tr", ("A",))]))
        [got] = await backend.claim({"A": 10}, {"A": 60.0})
        assert got.data == ODD
        for bad in (math.nan, math.inf, {"deep": [-math.inf]}):
            with pytest.raises(ValueError, match="NaN or Infinity"):
                await backend.write(Batch(messages=[Message("t", bad, "tr", ("A",))]))
        # A span whose text the file cannot store fails its write (the writer then stores it
        # escaped); a search for such text finds nothing rather than failing.
        with pytest.raises(ValueError):
            await backend.write(Batch(spans=[Span("tr", "A", "event", 1.0, error="\ud800")]))
        assert await backend.spans(trace_id="\ud800") == []
        assert await backend.spans(trace_id="tr") == []
    finally:
        await backend.close()


async def test_an_int_too_long_to_read_back_is_refused_at_the_emit(tmp_path: Path):
    # Python reads no integer of more than 4,300 digits from JSON: stored, such a payload would
    # fail every claim of its step (the delivery could never be handed out, nor dead-lettered).
    backend = SQLiteBackend(Settings(db=tmp_path / "stepline.db"))
    await backend.open()
    try:
        for bad in (10**5000, {"n": [-(10**4400)]}):
            with pytest.raises(ValueError, match="4300 digits"):
                await backend.write(Batch(messages=[Message("t", bad, "tr", ("A",))]))
        long_text = {"digits": "7" * 5000, "n": 10**4299}
        await backend.write(Batch(messages=[Message("t", long_text, "tr", ("A",))]))
        [got] = await backend.claim({"A": 10}, {"A": 60.0})
        assert got.data == long_text
    finally:
        await backend.close()


async def test_a_search_finds_exactly_the_spans_with_that_value_whatever_their_text(
    tmp_path: Path,
):
    # Rows are picked by their JSON text first: a name quoted inside another field, or the
    # same letters escaped differently, must neither match nor hide a span.
    names = ['a"b', "b", "x\\y", "y", "naïve", "nai\u0308ve", "日本", "ok", '"', "\\", "</s>"]
    backend = SQLiteBackend(Settings(db=tmp_path / "stepline.db", trace_retention=100))
    await backend.open()
    try:
        spans = [
            Span(t, s, "event", float(i), f"s{i}", t, 1, 1.0, st, f'"{s}" {t}', [s, t])
            for i, (t, s, st) in enumerate(
                (t, s, st) for t in names for s in names[::2] for st in ("ok", "failed")
            )
        ]
        for k in range(0, len(spans), 7):
            await backend.write(Batch(spans=spans[k : k + 7]))
        kept = spans[-100:]
        for name in names:
            for status in (None, "ok", "failed"):
                for field in ("trace_id", "step"):
                    got = await backend.spans(**{field: name}, status=status, limit=1000)
                    want = [
                        s.span_id
                        for s in reversed(kept)
                        if getattr(s, field) == name and status in (None, s.status)
                    ]
                    assert [s.span_id for s in got] == want, (field, name, status)
    finally:
        await backend.close()
