"""One hot-reloaded YAML settings file under `config/`, validated by a pydantic model.

Each flow's settings are data the user edits while the app runs. `YamlSettings.current()` costs
one `stat` per call: the file is re-read only when its modification time or size changes. An
edit that does not parse or validate is logged with the offending key and the reason, and the
last good settings stay in force, so a typo never takes a flow down. No file means the model's
defaults, which is why every key of a settings model needs one.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from app.suggest import unknown_key_message

__all__ = [
    "SettingsError",
    "YamlSettings",
    "config_dir",
    "config_path",
    "describe_validation_error",
    "parse_settings",
]

M = TypeVar("M", bound=BaseModel)


def config_dir() -> Path:
    """`$STEPLINE_CONFIG_DIR`, or `config` (relative to the working directory) when unset."""
    return Path(os.environ.get("STEPLINE_CONFIG_DIR") or "config")


def config_path(name: str) -> Path:
    return config_dir() / name


def describe_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Every problem as `dotted.key: reason`, joined on one line so a log entry stays whole.

    With `model`, an unknown key names the key it most likely meant (`spam.treshold`: did you
    mean `threshold`?), looked up among the keys of the section it sits in.
    """
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = err["msg"]
        if err["type"] == "extra_forbidden" and model is not None:
            known = _keys_at(model, err["loc"][:-1])
            if known:
                reason = unknown_key_message(str(err["loc"][-1]), known)
        parts.append(f"{key}: {reason}")
    return "; ".join(parts)


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a nested section of `model` accepts (by alias when it has one)."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None) or {}
    return [f.alias or name for name, f in fields.items()]


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    # PyYAML's own text spans several lines and repeats the source; keep where and what.
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last of two equal keys without a word, so an edit to the first
    `skip_drafts:` of a file that repeats it lower down silently does nothing: as an unknown
    key, a duplicate must not switch a check off unseen.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=False)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class SettingsError(ValueError):
    """A settings file that cannot be used; the text is `path: key: reason`."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def parse_settings(model: type[M], text: str, path: Path) -> M:
    """`text` validated by `model`; raises `SettingsError` naming `path`, the key and why.

    Also used for settings files that do not live on disk (a repository's `.stepline.yml`).
    """
    try:
        data: Any = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        raise SettingsError(path, _describe_yaml_error(exc)) from None
    if data is None:  # an empty file, or only comments
        data = {}
    if not isinstance(data, dict):
        reason = "the file must hold a mapping of keys, not a list or a scalar"
        raise SettingsError(path, reason)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(path, describe_validation_error(exc, model)) from None


class YamlSettings(Generic[M]):
    """The settings in force from one YAML file; `current()` always returns valid settings.

    `problem` holds the reason the file on disk was rejected (`key: reason`), or None when the
    settings in force are the file's (or the defaults, for a missing file).
    """

    def __init__(self, model: type[M], path: Path, logger: logging.Logger) -> None:
        self.model = model
        self.path = path
        self.problem: str | None = None
        self.exists = False
        self._log = logger
        self._settings = model()
        self._loaded = False  # whether a good read ever replaced the defaults
        # Nanoseconds and size: an edit within one coarse mtime tick still changes the size.
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def load_strict(self) -> M:
        """Read and validate now, without touching the settings in force.

        Raises `SettingsError` on a bad file; a missing file gives the defaults.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self.model()
        return parse_settings(self.model, text, self.path)

    def current(self) -> M:
        with self._lock:
            try:
                st = self.path.stat()
                stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp == self._stamp:
                return self._settings
            self._stamp = stamp
            self.exists = stamp is not None
            try:
                fresh = self.load_strict()
            except SettingsError as exc:
                self.problem = exc.reason
                kept = "keeping the last good settings" if self._loaded else "using the defaults"
                self._log.error("%s: %s; %s until it is fixed", self.path, exc.reason, kept)
                return self._settings
            self.problem = None
            self._settings = fresh
            self._loaded = True
            if self.exists:
                self._log.info("settings loaded from %s", self.path)
            return fresh
