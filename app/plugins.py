"""Flows plug in through the `stepline.plugins` entry-point group.

The runtime cannot know what a flow needs (a webhook secret, a mailbox token), so each flow
describes itself; the runtime decides from that description whether the flow is on, off or
misconfigured, the same way for every flow. An entry point names an object (usually a module):

    name: str                            the flow's name, e.g. "gmail"
    cli: typer.Typer | None              mounted as `stepline <name>`
    status() -> FlowStatus               what is configured and what is wrong (see below)
    verify() -> list[str]                optional: ask the service whether the credentials work
    outputs: list[str]                   optional: topics emitted for users to subscribe to,
                                         so nobody subscribing is not a warning

A flow is **required** when `STEPLINE_FLOWS` names it, or its YAML says `enabled: true`, or
(when neither says anything) some of its credentials are set. It is **off** when
`STEPLINE_FLOWS` leaves it out, its YAML says `enabled: false`, or none of its credentials are
set at all. A required flow with problems stops `stepline start`, with every problem of every
flow listed at once; `dev` logs them and runs.

Each installed flow whose steps are served also registers a `/readyz` check
(`readiness_checks`): the same decision, made again on every probe (a token file deleted or a
YAML broken after start shows), reports a required flow's problems with their fix; an off flow
is ready. A flow that is on may add live checks of its own with an optional
`ready(state) -> list[str]` (or a coroutine function): it gets the runtime's `State`, so it can
report what its steps recorded (the Gmail flow: a grant Google refused), and its reasons are
shown as "flow <name> is not ready: ...".
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from app.redact import redact_text
from app.settings import Settings
from app.suggest import did_you_mean

__all__ = [
    "FlowReadiness",
    "FlowStatus",
    "Plugin",
    "declared_outputs",
    "flow_states",
    "idle_flows",
    "load_plugins",
    "readiness_checks",
    "startup_problems",
]

log = logging.getLogger("stepline.plugins")

FLOWS_ENV = "STEPLINE_FLOWS"


@dataclass(slots=True)
class FlowStatus:
    """What a flow reports about itself; the runtime turns it into on, off or an error.

    `enabled` is the YAML's `enabled` when the file sets it, else None. `configured` is True
    when any of the flow's credentials is present. `problems` lists every thing to fix for the
    flow to run (each one line, naming the setting). `turn_on` says what would switch an off
    flow on.
    """

    enabled: bool | None = None
    configured: bool = False
    problems: list[str] = field(default_factory=list)
    turn_on: str = ""


State = Literal["on", "off", "error"]


@dataclass(slots=True)
class Plugin:
    name: str
    obj: Any

    @property
    def cli(self) -> Any:
        return getattr(self.obj, "cli", None)

    @property
    def outputs(self) -> list[str]:
        return list(getattr(self.obj, "outputs", ()) or ())

    def status(self) -> FlowStatus:
        status = getattr(self.obj, "status", None)
        if callable(status):
            result = status()
            if isinstance(result, FlowStatus):
                return result
        return FlowStatus(enabled=True)

    def verify(self) -> list[str]:
        verify = getattr(self.obj, "verify", None)
        return list(verify()) if callable(verify) else []

    async def ready(self, state: Any) -> list[str]:
        ready = getattr(self.obj, "ready", None)
        if not callable(ready):
            return []
        if inspect.iscoroutinefunction(ready):
            return list(await ready(state))
        return list(await asyncio.to_thread(ready, state))  # may read files: off the loop


@functools.cache
def load_plugins() -> list[Plugin]:
    plugins = []
    for ep in entry_points(group="stepline.plugins"):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken flow must not take the runtime down with it
            log.warning("plugin %s could not be loaded: %s", ep.name, exc)
            continue
        plugins.append(Plugin(getattr(obj, "name", ep.name), obj))
    return plugins


def declared_outputs() -> set[str]:
    """Topics the installed flows emit for users to subscribe to."""
    return {topic for plugin in load_plugins() for topic in plugin.outputs}


def _settings() -> Settings:
    # Read each time: the environment (and .env) may change between a test's checks.
    return Settings()


def _listed() -> set[str] | None:
    raw = _settings().flows
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _decide(plugin: Plugin, listed: set[str] | None, verify: bool) -> tuple[State, list[str]]:
    """The flow's state and, for "off", the one reason; for "error", every problem."""
    try:
        status = plugin.status()
    except Exception as exc:
        return "error", [f"its start-up check failed: {type(exc).__name__}: {exc}"]
    if listed is not None:
        if plugin.name not in listed:
            return "off", [f"not listed in {FLOWS_ENV} ({','.join(sorted(listed)) or 'empty'})"]
    elif status.enabled is False:
        return "off", ["`enabled: false` in its YAML file"]
    elif status.enabled is None and not status.configured:
        return "off", [
            f"no credentials set; {status.turn_on}" if status.turn_on else "no credentials set"
        ]
    problems = list(status.problems)
    if verify:
        # Asked even when something else is missing: a token the service rejects is listed
        # in the same run as the missing secret, not on the next try.
        try:
            problems += plugin.verify()
        except Exception as exc:
            problems.append(f"could not check the credentials: {type(exc).__name__}: {exc}")
    return ("error", problems) if problems else ("on", [])


def flow_states(
    flows: Iterable[str], *, verify: bool = False, warn: bool = True
) -> dict[str, tuple[State, list[str]]]:
    """State of each installed flow among `flows` (flows whose steps are served); `warn`:
    log a name in STEPLINE_FLOWS that no installed flow has (once, at start-up)."""
    served = set(flows)
    listed = _listed()
    if listed is not None and warn:
        unknown = listed - {p.name for p in load_plugins()}
        installed = [p.name for p in load_plugins()]
        for name in sorted(unknown):
            guess = did_you_mean(name, installed)
            log.warning(
                "%s names %r, which no installed flow is called (%s)",
                FLOWS_ENV,
                name,
                f"did you mean {guess!r}?" if guess else f"installed: {', '.join(installed)}",
            )
    return {p.name: _decide(p, listed, verify) for p in load_plugins() if p.name in served}


def idle_flows(flows: Iterable[str]) -> set[str]:
    """Names of installed flows among `flows` that are off or misconfigured: their cron steps
    do not fire. (Flows that are not plugins, such as a user's own, always run.)"""
    return {name for name, (state, _) in flow_states(flows, warn=False).items() if state != "on"}


def startup_problems(mode: str, flows: Iterable[str]) -> list[str]:
    """Every problem of every required flow among `flows`, one line each; off flows are
    logged, one line each, with what would turn them on."""
    verify = mode == "start" and _settings().verify_credentials
    shared: dict[str, list[str]] = {}  # a problem several flows share is listed once
    for name, (state, reasons) in flow_states(flows, verify=verify).items():
        if state == "off":
            log.info("flow %s is off: %s", name, reasons[0])
        elif state == "error":
            for reason in reasons:
                shared.setdefault(reason, []).append(name)
        else:
            log.info("flow %s is on", name)
    return [f"{', '.join(names)}: {reason}" for reason, names in shared.items()]


def _config_problems(plugin: Plugin) -> list[str] | None:
    """What keeps a required flow from being configured; None when it is on (empty: off)."""
    state, reasons = _decide(plugin, _listed(), verify=False)
    return None if state == "on" else [] if state == "off" else reasons


@dataclass(frozen=True, slots=True)
class FlowReadiness:
    """The `/readyz` check of one flow: what keeps it from running, with the fix (empty when
    it is on and its own `ready(state)` finds nothing, or when it is off)."""

    plugin: Plugin
    state: Any = None  # the runtime's State, handed to the plugin's `ready(state)`

    async def __call__(self) -> list[str]:
        # status() reads files and the environment: off the event loop.
        problems = await asyncio.to_thread(_config_problems, self.plugin)
        what = "configured"
        if problems is None:
            what = "ready"
            try:
                problems = await self.plugin.ready(self.state)
            except Exception as exc:
                problems = [f"its readiness check failed: {type(exc).__name__}"]
        # The reasons name settings and files, never values; masked all the same, since a YAML
        # error can quote the line it failed on.
        return [f"flow {self.plugin.name} is not {what}: {redact_text(r)}" for r in problems]


def readiness_checks(flows: Iterable[str], state: Any = None) -> list[FlowReadiness]:
    """One `/readyz` check per installed flow among `flows` (the flows whose steps are served);
    `state` (the runtime's) is what each plugin's `ready(state)` gets."""
    served = set(flows)
    return [FlowReadiness(p, state) for p in load_plugins() if p.name in served]
