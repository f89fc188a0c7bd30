"""Calling a handler: async directly, plain `def` in a thread pool, both under a time limit."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.context import Context, SyncContext
from app.registry import Step

__all__ = ["HandlerTimeout", "invoke"]

_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="stepline-sync")


class HandlerTimeout(Exception):
    """The handler ran past its step's `timeout`."""


async def invoke(step: Step, ctx: Context, *args: Any, timeout: float | None) -> Any:
    """Run `step.handler(*args, ctx)`; a sync handler gets a blocking `SyncContext`."""
    if step.is_async:
        call = step.handler(*args, ctx)
    else:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(
            _pool, functools.partial(step.handler, *args, SyncContext(ctx, loop)))
    if timeout is None:
        return await call
    try:
        # asyncio.timeout() wraps the running task; wait_for() would start another task.
        async with asyncio.timeout(timeout):
            return await call
    except TimeoutError:
        raise HandlerTimeout(f"{step.name} did not finish within {timeout:g} s "
                             "(raise `timeout` in its config if it needs longer)") from None
