"""`ctx.state`: grouped key-value state shared by every step."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from app.backends.base import Backend

__all__ = ["MAX_TTL", "State", "jsonable"]

MAX_TTL = 10 * 365 * 24 * 3600.0
"""Longest TTL accepted (ten years); beyond it, leave the TTL out."""


def jsonable(value: Any, what: str = "value") -> Any:
    """`value` as plain JSON data (pydantic models, dataclasses, datetimes allowed)."""
    try:
        return to_jsonable_python(value)
    except (PydanticSerializationError, ValueError, RecursionError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None


def _check(group: str, key: str | None = None) -> None:
    if not isinstance(group, str) or not group:
        raise ValueError("state group must be a non-empty string")
    if key is not None and (not isinstance(key, str) or not key):
        raise ValueError("state key must be a non-empty string")


class State:
    """Async state API; every method is a coroutine."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def get(self, group: str, key: str, default: Any = None) -> Any:
        _check(group, key)
        found, value = await self._backend.state_get(group, key)
        return value if found else default

    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> None:
        _check(group, key)
        if ttl is not None and not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be a number of seconds in (0, {MAX_TTL:.0f}]")
        await self._backend.state_set(group, key, jsonable(value, "state value"), ttl)

    async def delete(self, group: str, key: str) -> bool:
        _check(group, key)
        return await self._backend.state_delete(group, key)

    async def list(self, group: str) -> dict[str, Any]:
        _check(group)
        return await self._backend.state_list(group)

    async def clear(self, group: str) -> int:
        _check(group)
        return await self._backend.state_clear(group)

    async def groups(self) -> builtins.list[str]:  # `list` here is the method above
        return await self._backend.state_groups()

    async def ttl(self, group: str, key: str) -> float | None:
        _check(group, key)
        return await self._backend.state_ttl(group, key)

    async def increment(self, group: str, key: str, by: int | float = 1) -> int | float:
        _check(group, key)
        if isinstance(by, bool) or not isinstance(by, int | float):
            raise TypeError("increment `by` must be a number")
        return await self._backend.state_increment(group, key, by)

    async def update(
        self, group: str, key: str, fn: Callable[[Any], Any], default: Any = None
    ) -> Any:
        _check(group, key)
        return await self._backend.state_update(
            group, key, lambda old: jsonable(fn(old), "state value"), default
        )
