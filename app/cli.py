"""`stepline`: run and inspect a Stepline app."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_admin import cron_app, dlq_app, state_app
from app.cli_common import (
    StepsOption,
    console,
    ensure_port_free,
    fail,
    find_project,
    no_project,
    plain_help,
    run_with_runtime,
    settings_from,
    use_project,
)
from app.cli_db import db_app
from app.errors import NotFound
from app.logger import configure_logging
from app.plugins import load_plugins
from app.settings import Settings

__all__ = ["app", "command", "http_protocol", "listen_settings", "main"]

app = typer.Typer(
    name="stepline",
    help="Stepline: API, event and cron steps with durable events.\n\n"
    "Steps are *_step.py files under steps/ (or --steps DIR). Data lives in "
    ".stepline/stepline.db unless STEPLINE_DB or STEPLINE_BACKEND=redis says otherwise; "
    "commands that read it find the project (the nearest directory at or above this one "
    "holding steps/ or .stepline/).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(state_app, name="state")
app.add_typer(dlq_app, name="dlq")
app.add_typer(cron_app, name="cron")
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from app.version import __version__

        typer.echo(f"stepline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Stepline: API, event and cron steps with durable events."""


Port = Annotated[
    int | None,
    typer.Option(help="Port to listen on. Default: $STEPLINE_PORT, else 3000.", show_default=False),
]
DevHost = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="Address to bind. Default: $STEPLINE_HOST, else 127.0.0.1 (this machine only).",
        show_default=False,
    ),
]
StartHost = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="Address to bind. Default: $STEPLINE_HOST, else 0.0.0.0 (every interface).",
        show_default=False,
    ),
]


def listen_settings(steps: list[Path] | None, default_host: str, **options: Any) -> Settings:
    """Settings for a server command: `--host`, else STEPLINE_HOST from the environment or
    `.env`, else the command's own default (exported, so reloaded processes see it too)."""
    settings = settings_from(steps, **options)
    if options.get("host") is None and "host" not in settings.model_fields_set:
        settings = settings_from(None, host=default_host)
    ensure_port_free(settings.host, settings.port)
    return settings


def http_protocol(*, by_name: bool = False) -> Any:
    """The HTTP protocol to serve with: `OneWriteHttpTools` where httptools is installed (by
    name for a reloading server's child process), else uvicorn's own choice, h11: httptools
    is optional in uvicorn, and its protocol module cannot be imported without it."""
    try:
        from app.server.transport import OneWriteHttpTools
    except ImportError:
        return "auto"
    return "app.server.transport:OneWriteHttpTools" if by_name else OneWriteHttpTools


@app.command()
def dev(steps: StepsOption = None, port: Port = None, host: DevHost = None) -> None:
    """Run the app for development: reloads when a step file or Stepline's own code changes.

    Serves API steps, the Workbench (/workbench), the API docs (/docs) and /_stepline on
    http://HOST:PORT, and runs event and cron handlers in the same process. Config files
    under config/ are re-read in place without a restart. Development rules: the Workbench
    needs no token, unsigned GitHub webhooks are accepted with a warning, and tokens are not
    checked with GitHub or Slack. Data: .stepline/stepline.db, or $STEPLINE_DB.
    """
    import uvicorn

    settings = listen_settings(steps, "127.0.0.1", mode="dev", port=port, host=host)
    configure_logging(settings.log_level, settings.log_format)
    dirs = [str(p) for p in settings.steps if p.is_dir()]
    here = Path(__file__).resolve().parent
    dirs += [str(here)] + [str(p) for p in (here.parent / "agents",) if p.is_dir()]
    console().print(
        f"Stepline dev on [bold]http://{settings.host}:{settings.port}[/bold]  "
        f"(Workbench: /workbench, docs: /docs)"
    )
    uvicorn.run(
        "app.server.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=True,
        reload_dirs=dirs,
        reload_includes=["*.py"],
        http=http_protocol(by_name=True),  # one write per response, with httptools
        log_level=settings.log_level.lower(),  # its startup and request lines obey it too
        log_config=None,  # our formatter, text or JSON
        # An open Workbench Logs or Streams view never closes its connection; without
        # a bound a reload would wait for it forever. Browsers reconnect by themselves.
        timeout_graceful_shutdown=1,
    )


@app.command()
def start(
    steps: StepsOption = None,
    port: Port = None,
    host: StartHost = None,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="N",
            help="Worker processes to run the handlers beside the HTTP server; a worker that "
            "dies is restarted. 0: the server runs the handlers itself.",
        ),
    ] = 0,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Ask GitHub and Slack whether the tokens work before serving; only a token "
            "they call invalid stops the start. --no-verify (or "
            "STEPLINE_VERIFY_CREDENTIALS=0): offline, or a proxy that answers later.",
        ),
    ] = True,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every HTTP request (default: on, or $STEPLINE_ACCESS_LOG).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the app for production: no reload, production rules.

    Refuses to start (exit 1) when a step fails to load or a required flow is misconfigured,
    listing every problem, one a line. The Workbench and /_stepline answer only with
    STEPLINE_WORKBENCH_TOKEN; unsigned GitHub webhooks are refused. SIGTERM lets running handlers
    finish within STEPLINE_SHUTDOWN_GRACE seconds and stops the workers too.
    """
    import uvicorn

    if not verify:
        os.environ["STEPLINE_VERIFY_CREDENTIALS"] = "0"

    settings = listen_settings(
        steps,
        "0.0.0.0",
        mode="server" if workers else "start",
        port=port,
        host=host,
        access_log=access_log,
    )
    configure_logging(settings.log_level, settings.log_format)
    from app.worker import WorkerPool, metrics_dir, stop_on_signals

    pool = WorkerPool(workers, settings.shutdown_grace)
    with metrics_dir(workers > 0), stop_on_signals():
        pool.start()
        try:
            uvicorn.run(
                "app.server.main:app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level.lower(),
                access_log=settings.access_log,
                log_config=None,
                timeout_graceful_shutdown=int(settings.shutdown_grace),
                http=http_protocol(),  # one write per response, with httptools
            )
        finally:
            pool.stop()


@app.command()
def worker(steps: StepsOption = None) -> None:
    """Run event and cron handlers only, without HTTP.

    For scaling the handlers apart from the HTTP server: every process shares the SQLite file
    of one machine, or one Redis (STEPLINE_BACKEND=redis). SIGTERM lets running handlers
    finish; unfinished work is delivered again.
    """
    from app.worker import run_worker

    settings = settings_from(steps, mode="worker")
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(run_worker(settings))


@app.command("steps")
def list_steps(
    steps: StepsOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the flow graph as JSON: nodes (each with flow_control, scheduled, "
            "next_due), edges, errors, warnings, and the scheduled deliveries. Times "
            "(next_due, due, created_at) are Unix time: seconds since 1970-01-01 UTC.",
        ),
    ] = False,
    scheduled: Annotated[
        bool,
        typer.Option(
            "--scheduled", help="Also list the scheduled deliveries, soonest first, below."
        ),
    ] = False,
    limit: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="List at most N scheduled deliveries."),
    ] = 100,
) -> None:
    """List steps, topics, flows, flow control and scheduled deliveries.

    Below the table, a line per step with flow control or deliveries
    waiting: every key and limit it declares (concurrency per process, key
    and concurrency per key, debounce and its key, rate limit and its key; a
    key function by name, a lambda by file and line), how many deliveries
    are scheduled and when the next is due (UTC).

    Scheduled means not due yet: delayed emits (delay= or at=), retries in
    their backoff, ctx.retry_after, deliveries waiting out a debounce or a
    rate limit. --scheduled lists them below, soonest first (due, step,
    topic, id, attempt, trace); --json always has them as "scheduled", with
    their data (secrets masked). The tables show times in UTC and how far
    off; --json has them as Unix time (seconds since 1970-01-01 UTC).

    Tables go to stdout; load errors and warnings go to stderr, one a line.
    A store that cannot be read shows "?" (null in JSON). Exit 1 when a step
    failed to load.

    Example: stepline steps --scheduled --limit 20
    """
    from app.registry import load_registry
    from app.server.steps_view import flow_graph

    here = Path.cwd()
    root = find_project(here)
    if root is None and not steps and not os.environ.get("STEPLINE_STEPS"):
        raise no_project(here, "pass --steps DIR")
    if root is not None:
        use_project(steps)  # its steps/, and its database for the queue counts
    from app.cli_render import flow_control, print_steps, queue_counts

    settings = settings_from(steps)
    registry = load_registry(settings.steps)
    queue = queue_counts(settings, limit)
    if as_json:
        graph = flow_graph(registry)
        control = flow_control(registry, queue)
        for node in graph["nodes"]:
            node.update(control.get(node["id"], {}))
        graph["errors"] = [str(e) for e in registry.errors]
        graph["warnings"] = registry.warnings()
        graph["scheduled"] = None if queue is None else queue[2]
        typer.echo(json.dumps(graph, indent=2, default=str))
    else:
        print_steps(registry, queue, scheduled)
    if registry.errors:
        raise typer.Exit(1)


@app.command()
def emit(
    topic: Annotated[str, typer.Argument(help="Topic a step subscribes to, e.g. order.placed.")],
    data: Annotated[str, typer.Argument(help="JSON data, e.g. '{\"n\": 1}'")],
    key: Annotated[
        str | None,
        typer.Option(
            help="Idempotency key: an emit of a key already seen on this topic within "
            "STEPLINE_DEDUP_TTL (7 days) is dropped."
        ),
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Deliver no earlier than this many seconds from now."),
    ] = None,
    steps: StepsOption = None,
) -> None:
    """Emit an event to TOPIC, durably, and print its trace id.

    A running dev, start or worker process handles it. Exit 1 when no step subscribes to
    TOPIC or DATA is not JSON.
    """
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise fail(f"DATA is not valid JSON: {exc}") from None

    async def send(rt: Any) -> str:
        registry = rt.registry
        if topic not in registry.subscribers and not registry.steps:
            where = ", ".join(str(p) for p in rt.settings.steps)
            raise ValueError(
                f"no steps found in {where}: emit checks TOPIC against the project's steps; "
                "run it inside your project, or pass --steps DIR"
            )
        try:
            return str(await rt.emit(topic, value, key=key, delay=delay))
        except NotFound as exc:
            if not registry.errors:
                raise
            files = len(registry.errors)
            raise NotFound(
                f"{exc}; {files} step file{'s' if files != 1 else ''} did not load, "
                "`stepline steps` says why"
            ) from None

    typer.echo(run_with_runtime(send, steps))


_BUILTIN = {"dev", "start", "worker", "steps", "emit", "state", "dlq", "cron"}


def command() -> Any:
    """The click command behind `stepline`, with help that shows names instead of types."""
    return plain_help(typer.main.get_command(app))


def main() -> None:
    # A built-in command needs no flow CLI; skipping them keeps `dev`'s reloader process small.
    if len(sys.argv) < 2 or sys.argv[1] not in _BUILTIN:
        for plugin in load_plugins():
            if plugin.cli is not None:
                app.add_typer(plugin.cli, name=plugin.name)
    try:
        command()(prog_name="stepline")
    except SystemExit as exc:
        # Click exits 2 on a usage error; Stepline promises 1 for every user error.
        raise SystemExit(1 if exc.code == 2 else exc.code) from None
