"""Shared pieces of the CLI: options, finding the project, settings from options, running a
coroutine cleanly, and help text without the type placeholders a user cannot type."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from app.errors import SteplineError
from app.redact import redact_text
from app.runtime import Runtime
from app.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "StepsOption",
    "console",
    "ensure_port_free",
    "fail",
    "find_project",
    "no_project",
    "plain_help",
    "reflow",
    "run_with_runtime",
    "settings_from",
    "use_project",
]

T = TypeVar("T")


@functools.cache
def console() -> Console:
    """The CLI's stderr console, built when first printed to: rich is about 1 MiB of a
    server's memory that `stepline start` never uses while it serves."""
    from rich.console import Console

    # soft_wrap: an error is one line whatever the width (80 columns when stderr is not a
    # terminal), so `2>err.txt`, grep and CI logs see the whole reason on the line it starts on.
    return Console(stderr=True, soft_wrap=True)


StepsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--steps",
        metavar="DIR",
        help="Directory of *_step.py files (repeatable). "
        "Default: $STEPLINE_STEPS, else steps/ of the project.",
        show_default=False,
    ),
]
_MARKERS = ("steps", ".stepline")


def fail(message: str) -> typer.Exit:
    # Errors quote what went wrong (a URL, a value): masked like every other output.
    console().print(f"[red]error:[/red] {redact_text(message)}", highlight=False)
    return typer.Exit(1)


def ensure_port_free(host: str, port: int) -> None:
    """Refuse at once, saying what to do, when HOST:PORT is taken by a listening process.

    uvicorn reports it as `[Errno 98] Address already in use` and exits 3, naming neither the
    port nor the fix. Any other bind error (an address not of this machine) is left to uvicorn.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port in TIME_WAIT only is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise fail(
                    f"port {port} on {host} is in use (another stepline dev or start?): stop "
                    "that process, or choose another port with --port or STEPLINE_PORT"
                ) from None


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


def find_project(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `steps/` or `.stepline/`."""
    for directory in (start, *start.parents):
        if any((directory / marker).is_dir() for marker in _MARKERS):
            return directory
    return None


def use_project(steps: list[Path] | None) -> None:
    """Point the settings at the project the working directory belongs to.

    A command that reads the database must not open (and so create) an empty one wherever it
    happens to run: it finds the project upwards, or takes STEPLINE_DB as given, or refuses.
    """
    here = Path.cwd()
    root = find_project(here)
    if root is not None:
        _read_env_file(root / ".env")
    given = bool(os.environ.get("STEPLINE_DB")) or os.environ.get("STEPLINE_BACKEND") == "redis"
    if root is None:
        if given:
            return
        raise no_project(here)
    if not given:
        os.environ["STEPLINE_DB"] = str(root / ".stepline" / "stepline.db")
    # A database named explicitly still belongs to the project found here: its steps are the
    # ones `emit` checks the topic against, and `cron run` runs.
    if not steps and not os.environ.get("STEPLINE_STEPS"):
        os.environ["STEPLINE_STEPS"] = str(root / "steps")
    if not os.environ.get("STEPLINE_CONFIG_DIR") and (root / "config").is_dir():
        os.environ["STEPLINE_CONFIG_DIR"] = str(root / "config")


def no_project(here: Path, instead: str = "set STEPLINE_DB to its database file") -> typer.Exit:
    return fail(
        f"no Stepline project at {here} or above it (a project is the directory "
        f"holding steps/ or .stepline/): run this from your project, or {instead}"
    )


def _read_env_file(path: Path) -> None:
    """The project's `.env`, as `dev` and `start` read it there: the settings read `./.env`
    only, so from a subdirectory `STEPLINE_BACKEND=redis` in it was missed, and its
    `STEPLINE_DB` lost to the project default set below. Variables already in the environment
    win, as they do over `.env`. A relative path in a file or directory setting means the
    project's."""
    if not path.is_file():
        return
    from dotenv import dotenv_values

    for name, value in dotenv_values(path).items():
        if not value or name in os.environ:
            continue
        if name == "STEPLINE_STEPS":
            value = ":".join(str(path.parent / part) for part in value.split(":") if part)
        elif name.endswith(("_DB", "_DIR", "_FILE")) and not Path(value).expanduser().is_absolute():
            value = str(path.parent / value)
        os.environ[name] = value


def run_with_runtime(
    fn: Callable[[Runtime], Awaitable[T]],
    steps: list[Path] | None = None,
    *,
    load_steps: bool = True,
) -> T:
    """Open the backend (no workers, no cron), run `fn`, close; errors become one line."""
    use_project(steps)
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


def reflow(text: str) -> str:
    """`text` with each paragraph's line breaks made spaces, so the terminal wraps it.

    Typer's rich help keeps a docstring's single line breaks, and a docstring wrapped at 95
    columns then prints ragged in an 80-column terminal (a line of 80, a line of 15). A
    paragraph with an indented line (a list, an example) or Click's \\b marker keeps its lines.
    """
    paragraphs = text.split("\n\n")
    return "\n\n".join(
        p
        if p.startswith("\b") or any(line[:1].isspace() for line in p.splitlines())
        else " ".join(line.strip() for line in p.splitlines())
        for p in paragraphs
    )


def plain_help(command: Any) -> Any:
    """Help that shows names a user types (`TOPIC`, `--json`), not Python types.

    Typer prints `<list[Path]>`, `<bool>` and `{topic}` beside parameters; each parameter of
    `command` (a Typer click command) and its sub-commands gets its metavar, or its upper-cased
    name, instead.
    """
    for param in command.params:
        upper = (param.metavar or param.name or "").upper()
        if param.param_type_name == "argument":
            shown = upper if param.required else f"[{upper}]"
            shown += "..." if param.nargs != 1 else ""
            param.metavar = upper
            param.__dict__["display_type_rich"] = lambda ctx: None
            param.__dict__["_usage_display_name"] = lambda shown=shown: shown
        elif param.is_flag or param.count:
            param.__dict__["display_type_rich"] = lambda ctx: None
        elif param.metavar is None:
            param.metavar = upper
    original = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None:
            option.__dict__["display_type_rich"] = lambda ctx: None
        return option

    command.__dict__["get_help_option"] = help_option
    if command.help:
        command.help = reflow(command.help)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command
