"""`/_stepline/state`: browse and edit state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from app.redact import mask_entry
from app.runtime import Runtime
from app.server.guard import AdminGuard
from app.state import MAX_TTL

__all__ = ["state_router"]


class StateValue(BaseModel):
    value: Any
    ttl: float | None = Field(None, gt=0, le=MAX_TTL)


def state_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/state")
    state = runtime.state

    @router.get("")
    async def groups(_: AdminGuard) -> dict[str, list[str]]:
        return {"groups": await state.groups()}

    @router.get("/{group}")
    async def group(group: str, _: AdminGuard) -> dict[str, Any]:
        items = await state.list(group)
        keys = []
        for key, value in items.items():
            shown = mask_entry(key, value)
            keys.append({"key": key, "value": shown, "ttl": await state.ttl(group, key)})
        return {"group": group, "keys": keys}

    @router.put("/{group}/{key}")
    async def put(group: str, key: str, body: StateValue, _: AdminGuard) -> dict[str, Any]:
        try:
            await state.set(group, key, body.value, ttl=body.ttl)
        except (TypeError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None
        return {"group": group, "key": key, "ttl": body.ttl}

    @router.delete("/{group}/{key}")
    async def delete(group: str, key: str, _: AdminGuard) -> dict[str, bool]:
        if not await state.delete(group, key):
            raise HTTPException(404, f"no key {key!r} in group {group!r}")
        return {"deleted": True}

    return router
