"""Human output of `stepline steps`, and the queue counts it shows beside each step."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app.flow import describe
from app.registry import Registry
from app.settings import Settings
from app.step_config import ApiConfig, CronConfig, EventConfig

__all__ = ["print_steps", "queue_counts"]


def queue_counts(settings: Settings) -> dict[str, dict[str, int]] | None:
    """Per step: queued, scheduled (retries, delayed emits, deliveries waiting for a debounce
    or a rate limit), in flight, dead; {} when there is no database yet, None when the store
    cannot be read (the listing does without)."""
    if settings.backend == "sqlite" and not settings.db.exists():
        return {}  # listing steps must not create a database

    async def read() -> dict[str, dict[str, int]]:
        from app.backends import create_backend

        backend = create_backend(settings)
        await asyncio.wait_for(backend.open(), 5)
        try:
            return await asyncio.wait_for(backend.queue_stats(), 5)
        finally:
            await backend.close()

    try:
        return asyncio.run(read())
    except Exception:
        return None


def flow_control(registry: Registry, counts: dict[str, Any] | None) -> dict[str, Any]:
    """Per step: its flow control in words and its scheduled deliveries (JSON output)."""
    return {
        name: {
            "flow_control": describe(step.config) if isinstance(step.config, EventConfig) else "",
            "scheduled": None if counts is None else counts.get(name, {}).get("scheduled", 0),
        }
        for name, step in registry.steps.items()
    }


def print_steps(registry: Registry, counts: dict[str, dict[str, int]] | None = None) -> None:
    """The table and flows on stdout; warnings and errors on stderr, so a script that reads
    the table still sees them and `2>/dev/null` leaves a clean table."""
    out = Console()
    err = Console(stderr=True, soft_wrap=True)  # one line a problem, whatever the width
    table = Table(title=f"{len(registry.steps)} steps")
    for column in ("name", "kind", "trigger", "emits", "flows", "file"):
        # Names and topics are what users grep for: wrap them, never cut them short.
        table.add_column(column, overflow="fold")
    for step in sorted(registry.steps.values(), key=lambda s: (s.kind, s.name)):
        c = step.config
        trigger = _trigger(c)
        emits, flows = ", ".join(step.emits), ", ".join(c.flows)
        table.add_row(step.name, step.kind, trigger, emits, flows, _shown(step.file))
    out.print(table)
    # Below the table, one line a step: a column each would not fit a terminal.
    for name, row in sorted(flow_control(registry, counts).items()):
        waiting = row["scheduled"]
        if row["flow_control"] or waiting:
            shown = "? (the queue could not be read)" if waiting is None else waiting
            text = f"{row['flow_control'] or 'no flow control'}; scheduled: {shown}"
            out.print(f"[bold]{name}[/bold]: {text}", highlight=False)
    for flow, names in sorted(registry.flows.items()):
        out.print(f"[bold]flow {flow}[/bold]: {', '.join(names)}")
    for warning in registry.warnings():
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for error in registry.errors:
        err.print(f"[red]error:[/red] {error}", highlight=False)


def _shown(file: Path) -> str:
    """The file as the user would type it from here: an absolute path fills the table."""
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


def _trigger(config: ApiConfig | EventConfig | CronConfig) -> str:
    if isinstance(config, ApiConfig):
        return f"{config.method} {config.path}"
    if isinstance(config, EventConfig):
        return ", ".join(config.subscribes) + (" (flow control below)" if describe(config) else "")
    return f"{config.cron} ({config.timezone})"
