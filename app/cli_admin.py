"""`stepline state`, `stepline dlq` and `stepline cron`: look at and repair stored data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from app.cli_common import StepsOption, fail, run_with_runtime
from app.redact import mask_entry, redact, redact_text
from app.runtime import Runtime

__all__ = ["cron_app", "dlq_app", "state_app"]

state_app = typer.Typer(
    help="Read and change state: groups of keys with JSON values, as steps see them through "
    "ctx.state. Secrets are masked in what is printed.",
    no_args_is_help=True,
)
dlq_app = typer.Typer(
    help="Dead letters: deliveries that failed their last attempt, kept with their error and "
    "traceback until replayed (at most STEPLINE_DEAD_RETENTION).",
    no_args_is_help=True,
)
cron_app = typer.Typer(help="Run cron steps by hand.", no_args_is_help=True)

Group = Annotated[str, typer.Argument(help="State group, e.g. orders.")]
Key = Annotated[str, typer.Argument(help="Key in the group.")]


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@state_app.command("get")
def state_get(group: Group, key: Key) -> None:
    """Print the value of KEY in GROUP (exit 1 when missing), secrets masked."""
    missing = object()

    async def get(rt: Runtime) -> Any:
        return await rt.state.get(group, key, missing)

    value = run_with_runtime(get, load_steps=False)
    if value is missing:
        raise fail(f"no key {key!r} in group {group!r}")
    _print(mask_entry(key, value))


@state_app.command("set")
def state_set(
    group: Group,
    key: Key,
    value: Annotated[str, typer.Argument(help="A JSON value, e.g. '\"text\"' or 3")],
    ttl: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Expire after this many seconds (default: never)."),
    ] = None,
) -> None:
    """Set KEY in GROUP to a JSON VALUE."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise fail(f"VALUE is not valid JSON ({exc}); quote strings: '\"text\"'") from None
    run_with_runtime(lambda rt: rt.state.set(group, key, parsed, ttl=ttl), load_steps=False)


@state_app.command("list")
def state_list(
    group: Annotated[str | None, typer.Argument(help="Omit to list groups.")] = None,
) -> None:
    """List the keys and values of GROUP, or every group (secrets masked, as everywhere)."""
    if group is None:
        _print(redact(run_with_runtime(lambda rt: rt.state.groups(), load_steps=False)))
    else:
        items = run_with_runtime(lambda rt: rt.state.list(group), load_steps=False)
        _print({key: mask_entry(key, value) for key, value in items.items()})


@state_app.command("delete")
def state_delete(group: Group, key: Key) -> None:
    """Delete KEY from GROUP (exit 1 when missing)."""
    if not run_with_runtime(lambda rt: rt.state.delete(group, key), load_steps=False):
        raise fail(f"no key {key!r} in group {group!r}")


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[
        int, typer.Option(min=1, metavar="N", help="Show at most this many, newest first.")
    ] = 100,
) -> None:
    """One line per dead letter, tab-separated: id, step, topic, attempts, the error's first
    line. --json adds the trace id, the data and when it failed."""
    dead = run_with_runtime(lambda rt: rt.backend.dead_letters(limit), load_steps=False)
    if as_json:
        _print(
            [
                {
                    "id": d.id,
                    "step": d.step,
                    "topic": d.topic,
                    "attempts": d.attempts,
                    "error": redact_text(d.error),
                    "trace_id": d.trace_id,
                    "data": redact(d.data),
                    "failed_at": datetime.fromtimestamp(d.failed_at, UTC).isoformat(),
                }
                for d in dead
            ]
        )
        return
    for d in dead:
        error = redact_text(d.error).splitlines()[0][:120] if d.error else ""
        typer.echo(f"{d.id}\t{d.step}\t{d.topic}\t{d.attempts}\t{error}")
    if not dead:
        typer.echo("no dead letters", err=True)


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[
        list[str] | None, typer.Argument(help="Dead-letter ids, from `stepline dlq list`.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Put dead letters back on the queue (attempts start again at 1)."""
    if not ids and not all_:
        raise fail("give dead-letter IDs or --all (see `stepline dlq list`)")
    if ids and all_:
        # Either would be a guess: --all replays far more than the ids named.
        raise fail("give dead-letter IDs or --all, not both")
    count = run_with_runtime(
        lambda rt: rt.backend.replay(None if all_ else list(ids or [])), load_steps=False
    )
    if ids and not all_ and count == 0:
        raise fail("no dead letter with those ids (see `stepline dlq list`)")
    typer.echo(f"replayed {count}")
    missed = len(set(ids or [])) - count
    if ids and missed > 0:  # replayed already, or a typo: say so rather than pass over it
        typer.echo(
            f"{missed} of the {len(set(ids))} ids given "
            f"{'is not a dead letter' if missed == 1 else 'are not dead letters'} "
            "(replayed already, or mistyped; see `stepline dlq list`)",
            err=True,
        )


@cron_app.command("run")
def cron_run(
    name: Annotated[str, typer.Argument(help="The cron step's name (see `stepline steps`).")],
    steps: StepsOption = None,
) -> None:
    """Run the cron step NAME now (a running dev/start/worker process handles it)."""
    typer.echo(run_with_runtime(lambda rt: rt.trigger_cron(name), steps))
