"""The slice of the runtime's `ctx.state` that agents use, as a structural type."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["StateLike"]


class StateLike(Protocol):
    """Matches `ctx.state` in an async handler; any object with these coroutines will do."""

    async def increment(self, group: str, key: str, by: int | float = 1) -> int | float: ...

    async def get(self, group: str, key: str, default: Any = None) -> Any: ...

    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> None: ...
