"""The webhook path one layer at a time, for `bench/api_latency.py --layers`: Stepline servers
that each add one piece of work to the one before, measured in the same interleaved rounds as
bare FastAPI, so each layer's cost is a difference taken under the same load.

    api step 202         an API step answering 202 and nothing else (the endpoint still reads
                         the body, parses its JSON and writes the run's span after the answer)
    + HMAC               + the HMAC-SHA256 signature check
    + body model         + a pydantic `body` model the body is validated against
    + emit, no consumer  + the durable emit, keyed by delivery id (the 202 waits for the commit):
                         the server runs HTTP only (STEPLINE_MODE=server, as `start --workers N`
                         runs it, without the workers), so the delivery is stored and never run
    + consumer           + the event step's run in the same process: the full webhook, as the
                         default run's "Stepline webhook" plus the body model

"No consumer" keeps the subscribing step, so the delivery row is written as in the full path: a
topic nobody subscribes to would store no delivery at all and hide that insert's cost.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from _util import (
    ROOT,
    Rounds,
    await_healthy,
    free_port,
    spawn,
    stop,
    uvicorn_argv,
    write_steps,
)
from loadgen import SECRET

from tests.e2e.server import SteplineProcess

__all__ = ["LAYERS", "Layer", "layer_steps", "print_layers", "serve_layers"]


class Layer(NamedTuple):
    label: str
    check: bool  # verify the signature
    model: bool  # validate the body against a pydantic model
    emit: bool  # durable emit, answered once committed
    consumer: bool  # the event step runs in the same process


LAYERS = (
    Layer("api step 202", check=False, model=False, emit=False, consumer=False),
    Layer("+ HMAC", check=True, model=False, emit=False, consumer=False),
    Layer("+ body model", check=True, model=True, emit=False, consumer=False),
    Layer("+ emit, no consumer", check=True, model=True, emit=True, consumer=False),
    Layer("+ consumer", check=True, model=True, emit=True, consumer=True),
)

_SINK = """
    config = {"type": "event", "name": "Sink", "subscribes": ["hook.received"]}

    async def handler(data, ctx):
        pass
"""


def layer_steps(layer: Layer) -> dict[str, str]:
    """The step files of one layer (the same request shape and answer in every one)."""
    head = ["import hashlib, hmac", "from pydantic import BaseModel", ""]
    if layer.model:
        head += [
            "class Hook(BaseModel):",
            "    action: str",
            "    number: int",
            "    repository: str",
            "",
        ]
    config = '{"type": "api", "name": "Hook", "path": "/hook", "method": "POST"'
    config += ', "emits": ["hook.received"]' if layer.emit else ', "emits": []'
    config += ', "body": Hook}' if layer.model else "}"
    body = ["async def handler(req, ctx):"]
    if layer.check:
        body += [
            '    sent = req.headers.get("x-signature", "")',
            f'    good = "sha256=" + hmac.new({SECRET!r}, req.raw, hashlib.sha256).hexdigest()',
            "    if not hmac.compare_digest(sent, good):",
            '        return {"status": 401, "body": {"error": "bad signature"}}',
        ]
    if layer.emit:
        body.append(
            '    await ctx.emit("hook.received", req.body, key=req.headers.get("x-delivery"))'
        )
    body.append('    return {"status": 202, "body": {"ok": True}}')
    files = {"hook_step.py": "\n".join([*head, f"config = {config}", "", *body, ""])}
    if layer.emit:
        files["sink_step.py"] = _SINK
    return files


def _http_only(steps: Path, db: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """Stepline's server without its consumers: the app `stepline start` serves (same factory
    and one-write protocol), in the mode `start --workers N` gives it, with no workers."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    log = db.with_name(db.name + ".log")
    # `spawn` layers its env over os.environ: blank out the caller's STEPLINE_* there too.
    cleared = {k: "" for k in os.environ if k.startswith("STEPLINE_")}
    proc = spawn(
        uvicorn_argv(
            ["app.server.main:app_from_env", "--factory"],
            port,
            "--http",
            "app.server.transport:OneWriteHttpTools",
        ),
        log=log,
        env={
            **base,
            **cleared,
            **env,
            "STEPLINE_MODE": "server",
            "STEPLINE_STEPS": str(steps),
            "STEPLINE_DB": str(db),
        },
        cwd=ROOT,
    )
    await_healthy(proc, port, log, "Stepline (HTTP only)")
    return proc, port


def serve_layers(
    servers: contextlib.ExitStack, tmp: Path, env: dict[str, str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Start one server per layer (stopped with `servers`); their ports and pids by label."""
    ports: dict[str, int] = {}
    pids: dict[str, int] = {}
    for n, layer in enumerate(LAYERS):
        steps = write_steps(tmp / f"layer{n}", layer_steps(layer))
        db = tmp / f"layer{n}.db"
        if layer.emit and not layer.consumer:
            proc, port = _http_only(steps, db, env)
            servers.callback(stop, proc)
            ports[layer.label], pids[layer.label] = port, proc.pid
            continue
        app = servers.enter_context(SteplineProcess(steps, db, env=env, cwd=ROOT))
        assert app.process is not None
        ports[layer.label], pids[layer.label] = app.port, app.process.pid
    return ports, pids


def print_layers(rounds: Rounds, bare: str, *, peak: bool) -> None:
    """One line per layer: its figures, what it adds to the line above, its peak to bare's."""
    m: Callable[[str], float] = rounds.median
    print(
        "  layer by layer (each adds one thing to the line above; + = median per-round "
        "difference to the line above):"
    )
    print(
        f"    {'':<20} {'p50 ms':>7} {'p99 ms':>7} {'+p50':>7} {'+p99':>7} "
        f"{'CPU us/req':>10} {'+CPU':>6}" + (f" {'peak/bare':>9}" if peak else "")
    )
    above = bare
    for label in [bare, *(layer.label for layer in LAYERS)]:
        first = label == bare
        p50, p99, cpu = (
            "-" if first else format(rounds.added(f"{label} {u}", f"{above} {u}"), fmt)
            for u, fmt in (("p50 ms", "+.2f"), ("p99 ms", "+.2f"), ("CPU us/request", "+.0f"))
        )
        print(
            f"    {label:<20} {m(f'{label} p50 ms'):>7.2f} {m(f'{label} p99 ms'):>7.2f} "
            f"{p50:>7} {p99:>7} {m(f'{label} CPU us/request'):>10.0f} {cpu:>6}"
            + (f" {rounds.ratio(f'{label} peak', f'{bare} peak'):>8.2f}x" if peak else "")
        )
        above = label
