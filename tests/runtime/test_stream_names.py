"""The Streams view's last message times stay bounded when stream names are made at run time
(`ctx.stream(f"room-{id}")`): a long-running process must not keep every name it ever saw."""

from __future__ import annotations

from pathlib import Path

from app.backends.base import STREAMS_KEPT
from app.backends.sqlite import SQLiteBackend
from app.settings import Settings


async def test_names_made_at_run_time_are_kept_to_the_most_recent(tmp_path: Path):
    backend = SQLiteBackend(Settings(db=tmp_path / "stepline.db"))
    await backend.open()
    try:

        async def push(name: str, ts: float) -> None:
            # What ctx.stream publishes (app/context.py), and what a Redis relay delivers.
            payload = {"stream": name, "data": {}, "trace_id": "t", "step": "S", "ts": ts}
            await backend.publish(f"stream:{name}", payload)

        await push("lobby", 1.0)
        for n in range(STREAMS_KEPT + 500):
            await push(f"room-{n}", 10.0 + n)
            if n % 100 == 0:
                await push("lobby", 10.0 + n)  # a stream still in use is not forgotten
        seen = backend.streams_seen
        assert len(seen) == STREAMS_KEPT
        assert seen["lobby"] == 10.0 + STREAMS_KEPT + 400
        assert seen[f"room-{STREAMS_KEPT + 499}"] == 10.0 + STREAMS_KEPT + 499
        assert "room-0" not in seen
    finally:
        await backend.close()
