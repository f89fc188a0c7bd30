"""Shared pieces of the CLI: options, settings from options, running a coroutine cleanly."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from app.errors import SteplineError
from app.runtime import Runtime
from app.settings import Settings

__all__ = ["StepsOption", "console", "fail", "run_with_runtime", "settings_from"]

T = TypeVar("T")
console = Console(stderr=True)

StepsOption = Annotated[
    list[Path] | None,
    typer.Option("--steps", help="Directory of *_step.py files (repeatable). "
                 "Default: $STEPLINE_STEPS or ./steps.", show_default=False),
]


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def settings_from(steps: list[Path] | None = None, **env: Any) -> Settings:
    """Settings from the environment, with command-line options exported over it so that
    reloaded and child processes see the same values."""
    if steps:
        os.environ["STEPLINE_STEPS"] = ":".join(str(p) for p in steps)
    for name, value in env.items():
        if value is not None:
            os.environ[f"STEPLINE_{name.upper()}"] = str(value)
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "STEPLINE_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise fail(f"{name}: {first['msg']}") from None


def run_with_runtime(fn: Callable[[Runtime], Awaitable[T]], steps: list[Path] | None = None,
                     *, load_steps: bool = True) -> T:
    """Open the backend (no workers, no cron), run `fn`, close; errors become one line."""
    settings = settings_from(steps)

    async def main() -> T:
        from app.registry import Registry

        runtime = Runtime(settings, registry=None if load_steps else Registry())
        await runtime.open()
        try:
            return await fn(runtime)
        finally:
            await runtime.stop()

    try:
        return asyncio.run(main())
    except (SteplineError, ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{exc.strerror or exc}: {exc.filename or settings.db}") from None
