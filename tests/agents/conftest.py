"""Fixtures shared by the integration tests under tests/agents/."""

from __future__ import annotations

import time
from typing import Any

import pytest


class MemoryState:
    """An in-memory stand-in for the runtime's `ctx.state` (the coroutines agents use)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self._expires: dict[tuple[str, str], float] = {}

    def _live(self, group: str, key: str) -> bool:
        deadline = self._expires.get((group, key))
        if deadline is not None and deadline <= time.monotonic():
            self.data.get(group, {}).pop(key, None)
            self._expires.pop((group, key), None)
        return key in self.data.get(group, {})

    async def get(self, group: str, key: str, default: Any = None) -> Any:
        return self.data[group][key] if self._live(group, key) else default

    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> None:
        self.data.setdefault(group, {})[key] = value
        if ttl is None:
            self._expires.pop((group, key), None)
        else:
            self._expires[(group, key)] = time.monotonic() + ttl

    async def delete(self, group: str, key: str) -> bool:
        existed = self._live(group, key)
        self.data.get(group, {}).pop(key, None)
        return existed

    async def list(self, group: str) -> dict[str, Any]:
        return {k: v for k, v in dict(self.data.get(group, {})).items() if self._live(group, k)}

    async def update(self, group: str, key: str, fn: Any, default: Any = None) -> Any:
        # no await between read and write, so atomic on one event loop like the real backends
        value = fn(self.data[group][key] if self._live(group, key) else default)
        self.data.setdefault(group, {})[key] = value
        return value

    async def increment(self, group: str, key: str, by: int | float = 1) -> int | float:
        value = (await self.get(group, key, 0)) + by
        await self.set(group, key, value)
        return value


@pytest.fixture
def memory_state() -> MemoryState:
    return MemoryState()
