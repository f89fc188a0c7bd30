"""Human output of `stepline steps`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from app.flow import describe
from app.registry import Registry
from app.step_config import ApiConfig, CronConfig, EventConfig

__all__ = ["print_steps"]


def print_steps(registry: Registry) -> None:
    """The table and flows on stdout; warnings and errors on stderr, so a script that reads
    the table still sees them and `2>/dev/null` leaves a clean table."""
    out = Console()
    err = Console(stderr=True)
    table = Table(title=f"{len(registry.steps)} steps")
    for column in ("name", "kind", "trigger", "emits", "flows", "file"):
        # Names and topics are what users grep for: wrap them, never cut them short.
        table.add_column(column, overflow="fold")
    for step in sorted(registry.steps.values(), key=lambda s: (s.kind, s.name)):
        c = step.config
        trigger = _trigger(c)
        table.add_row(
            step.name, step.kind, trigger, ", ".join(step.emits), ", ".join(c.flows), str(step.file)
        )
    out.print(table)
    for flow, names in sorted(registry.flows.items()):
        out.print(f"[bold]flow {flow}[/bold]: {', '.join(names)}")
    for warning in registry.warnings():
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for error in registry.errors:
        err.print(f"[red]error:[/red] {error}", highlight=False)


def _trigger(config: ApiConfig | EventConfig | CronConfig) -> str:
    if isinstance(config, ApiConfig):
        return f"{config.method} {config.path}"
    if isinstance(config, EventConfig):
        control = describe(config)
        return ", ".join(config.subscribes) + (f" ({control})" if control else "")
    return f"{config.cron} ({config.timezone})"
