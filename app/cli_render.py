"""Human output of `stepline steps`, and what it reads from the queue: the counts beside each
step, when its next scheduled delivery is due, and (`--scheduled`) which are scheduled."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app.flow import describe
from app.redact import redact, register_known_secrets
from app.registry import Registry
from app.settings import Settings
from app.step_config import ApiConfig, CronConfig, EventConfig

__all__ = ["QueueRead", "due_text", "flow_control", "print_steps", "queue_counts"]


QueueRead = tuple[dict[str, dict[str, int]], dict[str, float], list[dict[str, Any]]]


def queue_counts(settings: Settings, limit: int = 100) -> QueueRead | None:
    """Per step: queued, scheduled (retries, delayed emits, deliveries waiting for a debounce
    or a rate limit), in flight, dead; per step with scheduled deliveries, when the next is
    due; and up to `limit` scheduled deliveries, soonest first. ({}, {}, []) when there is no
    database yet, None when the store cannot be read (the listing does without)."""
    if settings.backend == "sqlite" and not settings.db.exists():
        return {}, {}, []  # listing steps must not create a database

    async def read() -> QueueRead:
        from app.backends import create_backend

        backend = create_backend(settings)
        await asyncio.wait_for(backend.open(), 5)
        try:
            counts = await asyncio.wait_for(backend.queue_stats(), 5)
            soonest = await asyncio.wait_for(backend.scheduled(limit), 5)
            due: dict[str, float] = {}
            for name, row in counts.items():
                if row.get("scheduled"):
                    first = [r for r in soonest if r["step"] == name][:1] or (
                        await asyncio.wait_for(backend.scheduled(1, step=name), 5)
                    )
                    if first:
                        due[name] = first[0]["due"]
            # This command builds no Runtime, which would register the secrets the process
            # holds (by value, whatever their format): the data is masked with them too.
            register_known_secrets(settings)
            return counts, due, redact(soonest)
        finally:
            await backend.close()

    try:
        return asyncio.run(read())
    except Exception:
        return None


def due_text(due: float, now: float | None = None) -> str:
    """When a scheduled delivery runs: its UTC time and how far off, or that it waits for its
    key (Redis parks those at a time no clock reaches)."""
    if due >= 1e17:
        return "when its key's turn comes"
    left = max(0.0, due - (time.time() if now is None else now))
    away = f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min" if left < 7200 else None
    away = away or f"{left / 3600:.1f} h"
    return f"{datetime.fromtimestamp(due, UTC):%Y-%m-%d %H:%M:%S} UTC (in {away})"


def flow_control(registry: Registry, queue: QueueRead | None) -> dict[str, Any]:
    """Per step: its flow control in words, how many deliveries are scheduled and when the next
    is due (JSON output; None where the queue could not be read)."""
    counts, due = (None, {}) if queue is None else queue[:2]
    return {
        name: {
            "flow_control": describe(step.config) if isinstance(step.config, EventConfig) else "",
            "scheduled": None if counts is None else counts.get(name, {}).get("scheduled", 0),
            "next_due": due.get(name),
        }
        for name, step in registry.steps.items()
    }


def print_steps(
    registry: Registry, queue: QueueRead | None = None, scheduled: bool = False
) -> None:
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
    for name, row in sorted(flow_control(registry, queue).items()):
        waiting = row["scheduled"]
        if row["flow_control"] or waiting:
            shown = "? (the queue could not be read)" if waiting is None else waiting
            text = f"{row['flow_control'] or 'no flow control'}; scheduled: {shown}"
            if row["next_due"] is not None:
                text += f", next {due_text(row['next_due'])}"
            out.print(f"[bold]{name}[/bold]: {text}", highlight=False, soft_wrap=True)
    if scheduled:
        _print_scheduled(out, None if queue is None else queue[2], queue)
    for flow, names in sorted(registry.flows.items()):
        out.print(f"[bold]flow {flow}[/bold]: {', '.join(names)}")
    for warning in registry.warnings():
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for error in registry.errors:
        err.print(f"[red]error:[/red] {error}", highlight=False)


def _print_scheduled(out: Console, rows: list[dict[str, Any]] | None, queue: Any) -> None:
    if rows is None:
        out.print("scheduled deliveries: ? (the queue could not be read)", highlight=False)
        return
    total = sum(c.get("scheduled", 0) for c in queue[0].values())
    shown = f"{len(rows)} of {total}" if total > len(rows) else str(len(rows))
    noun = "delivery" if total == 1 else "deliveries"
    table = Table(title=f"{shown} scheduled {noun}, soonest first")
    table.add_column("due", no_wrap=True)  # one line: it is what the list is sorted by
    for column in ("step", "topic", "id", "attempt", "trace"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for r in rows:
        table.add_row(
            due_text(r["due"], now),
            r["step"],
            r["topic"],
            r["id"],
            str(r["attempt"]),
            r["trace_id"],
        )
    out.print(table)


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
