"""Finds `*_step.py` files, validates their configs and wires topics to subscribers."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.errors import StepLoadError
from app.step_config import ApiConfig, CronConfig, EventConfig, StepConfig
from app.suggest import unknown_key_message

__all__ = ["Registry", "Step", "load_registry"]

_MODELS: dict[str, type[ApiConfig | EventConfig | CronConfig]] = {
    "api": ApiConfig,
    "event": EventConfig,
    "cron": CronConfig,
}
_KINDS = tuple(_MODELS)


@dataclass(slots=True)
class Step:
    """A loaded step: its validated config, its handler and where it came from."""

    config: ApiConfig | EventConfig | CronConfig
    handler: Callable[..., Any]
    file: Path
    is_async: bool

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        return self.config.type

    @property
    def emits(self) -> list[str]:
        return self.config.emits


@dataclass
class Registry:
    """Every loaded step, the topic map, and what went wrong while loading."""

    steps: dict[str, Step] = field(default_factory=dict)
    errors: list[StepLoadError] = field(default_factory=list)
    subscribers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Step]:
        return [s for s in self.steps.values() if s.kind == kind]

    @property
    def flows(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for step in self.steps.values():
            for flow in step.config.flows or ["default"]:
                out.setdefault(flow, []).append(step.name)
        return out

    def warnings(self) -> list[str]:
        from app.plugins import declared_outputs

        emitted = {t for s in self.steps.values() for t in s.emits}
        subscribed = set(self.subscribers)
        # A flow's declared outputs are meant for users' own steps: nobody listening is fine.
        unheard = emitted - subscribed - declared_outputs()
        out = [f"topic {t!r} is emitted but no step subscribes to it" for t in sorted(unheard)]
        out += [
            f"topic {t!r} is subscribed to but no step emits it"
            for t in sorted(subscribed - emitted)
        ]
        return out


def load_registry(dirs: Iterable[Path]) -> Registry:
    """Load every `*_step.py` under `dirs`. Broken files are reported, not fatal."""
    registry = Registry()
    loaded: list[Step] = []
    for directory in dirs:
        if not directory.is_dir():
            registry.errors.append(StepLoadError(str(directory), "steps directory not found"))
            continue
        for file in sorted(directory.rglob("*_step.py")):
            if any(part.startswith(".") or part == "__pycache__" for part in file.parts):
                continue
            try:
                loaded.append(_load_file(file))
            except StepLoadError as exc:
                registry.errors.append(exc)
    clashing = _clashes(loaded, registry.errors)
    for step in loaded:
        if step.file not in clashing:
            registry.steps[step.name] = step
    subs: dict[str, list[str]] = {}
    for step in registry.steps.values():
        if isinstance(step.config, EventConfig):
            for topic in step.config.subscribes:
                subs.setdefault(topic, []).append(step.name)
    registry.subscribers = {t: tuple(names) for t, names in subs.items()}
    return registry


def _clashes(steps: list[Step], errors: list[StepLoadError]) -> set[Path]:
    """Files that share a step name or a route with another file. None of them loads: which
    one would win depends on file names, so a new file must not silently replace an old one."""
    by_name: dict[str, list[Step]] = {}
    by_route: dict[tuple[str, str], list[Step]] = {}
    for step in steps:
        by_name.setdefault(step.name, []).append(step)
        if isinstance(step.config, ApiConfig):
            by_route.setdefault((step.config.method, step.config.path), []).append(step)
    groups = [
        (f"duplicate step name {name!r}", "name", group)
        for name, group in by_name.items()
        if len(group) > 1
    ]
    groups += [
        (f"duplicate route {method} {path}", "path", group)
        for (method, path), group in by_route.items()
        if len(group) > 1
    ]
    clashing: set[Path] = set()
    for what, field_name, group in groups:
        files = [s.file for s in group]
        for step in group:
            others = ", ".join(str(f) for f in files if f != step.file) or str(step.file)
            errors.append(
                StepLoadError(
                    str(step.file),
                    f"{what}, also in {others}; neither file is loaded: rename one of them",
                    field_name,
                )
            )
        clashing.update(files)
    return clashing


def _load_file(file: Path) -> Step:
    module = _import(file)
    if not hasattr(module, "config"):
        raise StepLoadError(str(file), "no `config` defined", "config")
    if not hasattr(module, "handler") or not callable(module.handler):
        raise StepLoadError(str(file), "no callable `handler` defined", "handler")
    config = _validate(file, module.config)
    handler = module.handler
    _check_signature(file, config, handler)
    _check_literal_emits(file, config)
    return Step(
        config=config, handler=handler, file=file, is_async=inspect.iscoroutinefunction(handler)
    )


def _import(file: Path) -> Any:
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    name = f"stepline_steps.{file.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise StepLoadError(str(file), "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise StepLoadError(str(file), f"import failed: {type(exc).__name__}: {exc}") from exc
    return module


def _validate(file: Path, raw: Any) -> ApiConfig | EventConfig | CronConfig:
    if isinstance(raw, BaseModel):
        raw = {k: getattr(raw, k) for k in type(raw).model_fields}
    if not isinstance(raw, dict):
        raise StepLoadError(str(file), "must be a dict or a step config model", "config")
    kind = raw.get("type")
    if kind not in _KINDS:
        raise StepLoadError(
            str(file), f"unknown kind {kind!r}; use one of {', '.join(_KINDS)}", "type"
        )
    try:
        return _MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        problems = exc.errors()
        # An unknown key explains a "Field required" beside it (a misspelt required key),
        # so it is reported first, with the key it most likely meant.
        first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
        message = first["msg"].removeprefix("Value error, ")
        field = ".".join(str(p) for p in first["loc"]) or "config"
        if first["type"] == "extra_forbidden":
            known = [k for k in _MODELS[kind].model_fields if k != "type"] + ["type"]
            message = unknown_key_message(field, known)
        raise StepLoadError(str(file), message, field) from None


def _check_signature(file: Path, config: StepConfig, handler: Callable[..., Any]) -> None:
    wanted = {"api": 2, "event": 2, "cron": 1}[config.type]
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != wanted and not any(p.kind == p.VAR_POSITIONAL for p in params):
        shape = {"api": "handler(req, ctx)", "event": "handler(data, ctx)", "cron": "handler(ctx)"}[
            config.type
        ]
        article = "an" if config.type in ("api", "event") else "a"
        raise StepLoadError(
            str(file), f"{article} {config.type} step's handler is {shape}", "handler"
        )


def _check_literal_emits(file: Path, config: StepConfig) -> None:
    """Catch `ctx.emit("topic", ...)` of an undeclared topic at load time, not at run time."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "emit"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and node.args[0].value not in config.emits
        ):
            raise StepLoadError(
                str(file),
                f"line {node.lineno} emits {node.args[0].value!r}, "
                "which is not declared; add it to `emits`",
                "emits",
            )
