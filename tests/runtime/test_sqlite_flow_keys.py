"""Flow-control rate limits on the SQLite backend, including the rows earlier versions left in
`rate_log` (claims made before an upgrade still count in their window)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.backends.sqlite import SQLiteBackend
from app.settings import Settings
from app.types import Batch, Message


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
