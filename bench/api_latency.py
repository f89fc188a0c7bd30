"""What Stepline's webhook path adds over bare FastAPI: latency at a steady rate and peak rate,
both servers measured in turn in one run.

    .venv/bin/python bench/api_latency.py            # 200 req/s for 10 s, wrk 5 s, 3 rounds
    .venv/bin/python bench/api_latency.py --quick    # smoke: 3 s, wrk 2 s, 1 round (< 1 min)
    .venv/bin/python bench/api_latency.py --against main~3   # also that revision's Stepline
    .venv/bin/python bench/api_latency.py --layers   # also a server per layer (bench/api_layers.py)

Servers (each uvicorn, one process, started once and kept for every round):
- bare FastAPI: `POST /hook` reads the body and answers 202 (bench/bare_api.py), on stock
  uvicorn (uvloop, httptools): the reference of every "added" figure and ratio;
- bare FastAPI on Stepline's HTTP protocol (app/server/transport.py: uvicorn's httptools
  protocol writing each response once), to show what that protocol alone gives any app;
- Stepline: `stepline start` with an API step that verifies the HMAC-SHA256 signature, durably
  emits with the delivery id as key, and answers 202; the event consumer runs in the same process.
  All run without an access log (bare: `--no-access-log`; Stepline: STEPLINE_ACCESS_LOG=0;
  `--access-log` turns Stepline's on, as `stepline start` has it by default, to see its cost);
- with `--against REV`, Stepline as of that git revision too (exported to a scratch directory,
  run with this venv), to measure a change against the code before it in the same run;
- with `--layers`, a Stepline server per layer of the webhook path, each adding one piece of
  work to the one before (bench/api_layers.py), printed as a table of what each layer adds.

Beside each Stepline latency line: its process's CPU time per request at the steady rate, the
figure the machine's load moves least.

Latency comes from bench/loadgen.py, an open-loop raw-socket client in its own process (it costs
a few per cent of a core at 200 req/s, where an httpx client added ~2 ms to every figure). Peak
comes from wrk (32 connections, a Lua script giving each request its own delivery id); without
wrk (`apt-get install wrk`) the peak lines are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _util import (
    ROOT,
    Rounds,
    await_healthy,
    bench_parser,
    free_port,
    parse,
    rss_mib,
    scratch,
    spawn,
    stop,
    uvicorn_argv,
    write_steps,
)
from api_layers import print_layers, serve_layers
from loadgen import SECRET, signed_body

from tests.e2e.server import SteplineProcess

__all__ = ["STEPS"]

HERE = Path(__file__).resolve().parent
STEPS = {
    "hook_step.py": f"""
        import hashlib, hmac

        config = {{"type": "api", "name": "Hook", "path": "/hook", "method": "POST",
                  "emits": ["hook.received"]}}

        async def handler(req, ctx):
            sent = req.headers.get("x-signature", "")
            good = "sha256=" + hmac.new({SECRET!r}, req.raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(sent, good):
                return {{"status": 401, "body": {{"error": "bad signature"}}}}
            await ctx.emit("hook.received", req.body, key=req.headers.get("x-delivery"))
            return {{"status": 202, "body": {{"ok": True}}}}
    """,
    "sink_step.py": """
        config = {"type": "event", "name": "Sink", "subscribes": ["hook.received"]}

        async def handler(data, ctx):
            pass
    """,
}

# Settings as a user's `stepline start` has them (SteplineProcess shortens them for tests).
DEFAULTS = {
    "STEPLINE_LEASE_SECONDS": "30",
    "STEPLINE_POLL_INTERVAL": "0.2",
    "STEPLINE_RETRY_BASE": "1",
    "STEPLINE_RETRY_MAX": "300",
    "STEPLINE_LOG_LEVEL": "WARNING",
    "STEPLINE_ACCESS_LOG": "0",  # like the bare server's --no-access-log
}

WRK_SCRIPT = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = args[1] .. "-" .. tid .. "-"
  counter = 0
end
function request()
  counter = counter + 1
  wrk.headers["x-delivery"] = prefix .. counter
  return wrk.format("POST", "/hook", nil, wrk.body)
end
"""


def serve_bare(tmp: Path, *, one_write: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    http = ["--http", "app.server.transport:OneWriteHttpTools"] if one_write else []
    log = tmp / ("bare-one-write.log" if one_write else "bare.log")
    proc = spawn(
        uvicorn_argv(["--app-dir", str(HERE), "bare_api:app"], port, *http),
        log=log,
        cwd=ROOT,
    )
    await_healthy(proc, port, log, "bare FastAPI")
    return proc, port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(port: int, rate: float, seconds: float, pid: int | None = None) -> dict[str, float]:
    args = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
    ]
    cpu = _cpu_seconds(pid) if pid is not None else 0.0
    done = subprocess.run(args, capture_output=True, text=True)
    cpu = _cpu_seconds(pid) - cpu if pid is not None else 0.0
    if done.returncode != 0:
        raise SystemExit(f"loadgen failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    if result["unanswered"] or set(result["statuses"]) != {"202"}:
        raise SystemExit(
            f"loadgen: unexpected answers {result['statuses']}, {result['unanswered']} unanswered"
        )
    q = statistics.quantiles(result["latencies_ms"], n=100)
    out = {"p50 ms": q[49], "p99 ms": q[98], "client lag ms": result["worst_client_lag_ms"]}
    if pid is not None:  # the client also sends a second of warm-up requests
        out["CPU us/request"] = cpu / (rate * (seconds + 1)) * 1e6
    return out


def wrk_peak(port: int, seconds: float, script: Path) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{seconds:g}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/hook",
            "--",
            uuid.uuid4().hex[:8],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk: the server refused requests:\n{out}")
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[-1])


def write_wrk_script(tmp: Path) -> Path:
    body, signature = signed_body(0)
    script = tmp / "post.lua"
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = {json.dumps(body.decode())}\n"
        f"wrk.headers['content-type'] = 'application/json'\n"
        f"wrk.headers['x-signature'] = '{signature}'\n" + WRK_SCRIPT
    )
    return script


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="3 s, wrk 2 s, 1 round")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--wrk-seconds", type=float, default=5)
    parser.add_argument(
        "--access-log", action="store_true", help="Stepline logs every request (bare does not)"
    )
    parser.add_argument("--against", metavar="REV", help="also run Stepline as of git REV")
    parser.add_argument(
        "--layers", action="store_true", help="also a server per layer of the webhook path"
    )
    args = parse(parser, seconds=3, wrk_seconds=2)
    env = {**DEFAULTS, "STEPLINE_ACCESS_LOG": "1"} if args.access_log else DEFAULTS
    with scratch("api") as tmp:
        steps = write_steps(tmp / "steps", STEPS)
        bare, bare_port = serve_bare(tmp)
        one, one_port = serve_bare(tmp, one_write=True)
        try:
            with contextlib.ExitStack() as servers:
                app = servers.enter_context(
                    SteplineProcess(steps, tmp / "bench.db", env=env, cwd=ROOT)
                )
                ports = {BARE: bare_port, ONE: one_port, OURS: app.port}
                assert app.process is not None
                pids = {OURS: app.process.pid}
                if args.against:
                    tree = export(args.against, tmp / "against")
                    before = servers.enter_context(
                        SteplineProcess(steps, tmp / "against.db", env=env, cwd=tree)
                    )
                    assert before.process is not None
                    ports[f"at {args.against}"] = before.port
                    pids[f"at {args.against}"] = before.process.pid
                layers: list[str] = []
                if args.layers:
                    layer_ports, layer_pids = serve_layers(servers, tmp, env)
                    ports.update(layer_ports)
                    pids.update(layer_pids)
                    pids[BARE] = bare.pid  # the layers' CPU is read against bare's
                    layers = list(layer_ports)
                time.sleep(1)  # let start-up garbage settle before reading RSS
                idle = rss_mib(app.process.pid), rss_mib(bare.pid)
                run(args, ports, pids, tmp, layers)
                print(
                    f"  idle RSS before the load: Stepline {idle[0]:.0f} MiB, bare FastAPI "
                    f"{idle[1]:.0f} MiB ({idle[0] / idle[1]:.2f}x); after it: Stepline "
                    f"{rss_mib(app.process.pid):.0f} MiB"
                )
        finally:
            stop(bare)
            stop(one)


BARE, ONE, OURS = "bare FastAPI", "bare, one write", "Stepline webhook"


def export(rev: str, into: Path) -> Path:
    """The tree of git revision `rev`, unpacked into `into` (this venv runs it)."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(
    args: argparse.Namespace,
    ports: dict[str, int],
    pids: dict[str, int],
    tmp: Path,
    layers: list[str],
) -> None:
    plan: dict[str, Callable[[], float | dict[str, float]]] = {
        name: functools.partial(latency, port, args.rate, args.seconds, pids.get(name))
        for name, port in ports.items()
    }
    have_wrk = shutil.which("wrk") is not None
    if have_wrk:
        script = write_wrk_script(tmp)
        for name, port in ports.items():
            plan[f"{name} peak"] = functools.partial(wrk_peak, port, args.wrk_seconds, script)
    rounds = Rounds(args.rounds, unit="").run(plan)
    m = rounds.median
    print(
        f"Webhook POST, open loop at {args.rate:g} req/s for {args.seconds:g} s per round "
        f"(median of {args.rounds}):"
    )
    for name in [n for n in ports if n not in layers]:
        peak = f", peak {m(f'{name} peak'):,.0f} req/s (wrk, 32 connections)" if have_wrk else ""
        cpu = f", CPU {m(f'{name} CPU us/request'):.0f} us/request" if name in pids else ""
        print(
            f"  {name:<17} p50 {m(f'{name} p50 ms'):.2f} ms, p99 {m(f'{name} p99 ms'):.2f} ms"
            f"{cpu}{peak}; client lag at worst {m(f'{name} client lag ms'):.2f} ms"
        )
    for name in pids.keys() - {OURS, BARE, *layers}:
        print(
            f"  Stepline / {name}: CPU per request "
            f"{rounds.ratio(f'{OURS} CPU us/request', f'{name} CPU us/request'):.2f}x, p99 "
            f"{rounds.added(f'{OURS} p99 ms', f'{name} p99 ms'):+.2f} ms"
            + (f", peak {rounds.ratio(f'{OURS} peak', f'{name} peak'):.2f}x" if have_wrk else "")
        )
    for base in (BARE, ONE):
        print(
            f"  added by Stepline over {base}: "
            f"p50 {rounds.added(f'{OURS} p50 ms', f'{base} p50 ms'):+.2f} ms, "
            f"p99 {rounds.added(f'{OURS} p99 ms', f'{base} p99 ms'):+.2f} ms"
            + (
                f"; peak {rounds.ratio(f'{OURS} peak', f'{base} peak'):.2f}x"
                if have_wrk
                else "; install wrk (apt-get install wrk) for the peak ratio"
            )
        )
    if layers:
        print_layers(rounds, BARE, peak=have_wrk)


if __name__ == "__main__":
    main()
