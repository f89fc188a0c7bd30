"""Flows plug in through the `stepline.plugins` entry-point group.

An entry point names an object (usually a module) with:
    name: str                           the flow's name, e.g. "gmail"
    cli: typer.Typer | None             mounted as `stepline <name>`
    check(mode: str) -> str | None      at start-up: a one-line reason the flow cannot run
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

__all__ = ["Plugin", "load_plugins", "startup_problems"]

log = logging.getLogger("stepline.plugins")


@dataclass(slots=True)
class Plugin:
    name: str
    obj: Any

    @property
    def cli(self) -> Any:
        return getattr(self.obj, "cli", None)

    def check(self, mode: str) -> str | None:
        check = getattr(self.obj, "check", None)
        return check(mode) if callable(check) else None


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


def startup_problems(mode: str, flows: Iterable[str]) -> list[str]:
    """Reasons the flows among `flows` cannot run; a flow whose steps are not served is
    not checked."""
    served = set(flows)
    problems = []
    for plugin in load_plugins():
        if plugin.name not in served:
            continue
        try:
            reason = plugin.check(mode)
        except Exception as exc:
            reason = f"start-up check failed: {exc}"
        if reason:
            problems.append(f"{plugin.name}: {reason}")
    return problems
