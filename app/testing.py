"""Test your own steps in-process.

    from app.testing import Harness

    async def test_signup(tmp_path):
        async with Harness(steps=["steps"], db=tmp_path / "t.db") as h:
            r = await h.post("/signup", json={"email": "a@b.c"})
            assert r.status_code == 200
            await h.drain()                       # until every resulting event is handled
            assert h.emitted("user.created")[0].data["email"] == "a@b.c"
            assert await h.state.get("users", "a@b.c") is not None

The harness runs the real runtime (engine, writer, backend) on a temporary database with short
retry delays and leases, and calls API steps through the real FastAPI app over ASGI. With
Stepline installed, pytest also offers it as the `stepline_harness` fixture and runs `async def`
tests without configuration (see app/pytest_plugin.py).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.registry import Registry, load_registry
from app.runtime import Runtime
from app.server import create_app
from app.settings import Settings
from app.types import Batch, DeadLetter, LogEntry, Message, Span

__all__ = ["Harness"]

_FAST = {
    "retry_base": 0.01,
    "retry_max": 0.05,
    "poll_interval": 0.02,
    "lease_seconds": 5.0,
    "shutdown_grace": 2.0,
}


class Harness:
    """An in-process Stepline app for tests. Every wait is bounded and says what it waited for."""

    __test__ = False

    def __init__(
        self,
        steps: Sequence[str | Path],
        *,
        db: str | Path | None = None,
        clock: Callable[[], float] | None = None,
        registry: Registry | None = None,
        **settings: Any,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stepline-test-")
            db = Path(self._tmp.name) / "stepline.db"
        values = {
            **_FAST,
            "mode": "dev",
            **settings,
            "steps": [Path(s) for s in steps],
            "db": Path(db),
        }
        self.settings = Settings(**values)
        self.registry = registry or load_registry(self.settings.steps)
        self.runtime = Runtime(self.settings, registry=self.registry, clock=clock)
        self.messages: list[Message] = []
        self.runtime.commit_hooks.append(self._record)
        self.app = create_app(self.runtime, manage=False)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://stepline.test"
        )

    def _record(self, batch: Batch) -> None:
        self.messages.extend(batch.messages)

    async def __aenter__(self) -> Harness:
        await self.runtime.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.runtime.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def state(self) -> Any:
        return self.runtime.state

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, **kwargs)

    async def emit(
        self,
        topic: str,
        data: Any = None,
        key: str | None = None,
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> str:
        """Emit as `stepline emit` would (`delay`/`at` as for `ctx.emit`); returns the trace
        id."""
        return await self.runtime.emit(topic, data, key=key, delay=delay, at=at)

    async def run_cron(self, name: str) -> str:
        return await self.runtime.trigger_cron(name)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is queued, scheduled for retry or running."""
        deadline = time.monotonic() + timeout
        while True:
            await self.runtime.writer.flush()
            busy = self.runtime.engine.in_flight or await self.runtime.backend.pending()
            if not busy:
                return
            if time.monotonic() > deadline:
                stats = await self.runtime.backend.queue_stats()
                raise TimeoutError(f"work still pending after {timeout} s: {stats}")
            self.runtime.engine.wake(None)
            await asyncio.sleep(0.01)

    def emitted(self, topic: str | None = None) -> list[Message]:
        """Committed emits, oldest first (dropped duplicate keys included)."""
        return [m for m in self.messages if topic is None or m.topic == topic]

    async def logs(self, trace_id: str | None = None, step: str | None = None) -> list[LogEntry]:
        return list(
            reversed(await self.runtime.backend.logs(trace_id=trace_id, step=step, limit=10_000))
        )

    async def spans(self, trace_id: str | None = None, step: str | None = None) -> list[Span]:
        return list(
            reversed(await self.runtime.backend.spans(trace_id=trace_id, step=step, limit=10_000))
        )

    async def dead_letters(self) -> list[DeadLetter]:
        return await self.runtime.backend.dead_letters(1000)

    async def replay(self, ids: list[str] | None = None) -> int:
        count = await self.runtime.backend.replay(ids)
        self.runtime.engine.wake(None)
        return count
