"""Ordering keys: which deliveries of a step must run one after another.

An event step that declares `key` (a `/`-separated path into the event data, or a function of
the data) and `concurrency_per_key: n` has each delivery stamped with its key when it is
emitted. The backend then hands out, per key, only the first `n` unsettled deliveries in emit
order, so with n = 1 a key's deliveries run one at a time, in order, across every process,
while other keys run in parallel. A delivery that fails keeps its place (and holds its key)
through its retries, until it succeeds or is dead-lettered; a dead letter frees the key and is
replayed without one. The key is computed when the event is emitted, so a path missing from
the data fails the emitting run with a reason, rather than a delivery later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.step_config import EventConfig

__all__ = ["KeyMissing", "describe", "key_value", "partitions"]


class KeyMissing(ValueError):
    """The ordering key of a step cannot be read from the emitted data."""


def key_value(config: EventConfig, data: Any) -> str:
    """The key of `data` for the step of `config` (which declares one)."""
    spec = config.key
    if spec is None:
        raise KeyMissing(f"event step {config.name!r} declares no key")
    if callable(spec):
        try:
            value = spec(data)
        except Exception as exc:
            raise KeyMissing(
                f"the key function of event step {config.name!r} failed on the emitted data: "
                f"{type(exc).__name__}: {exc}; make it return a value for every event"
            ) from None
        where = "its key function returned None"
    else:
        value = data
        for part in spec.split("/"):
            if isinstance(value, Mapping):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = None
            if value is None:
                break
        where = f"the data has nothing at {spec!r}"
    if value is None:
        raise KeyMissing(
            f"event step {config.name!r} orders its deliveries by key, but {where}; emit data "
            "that carries it, or change the step's `key`"
        )
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def partitions(
    configs: Mapping[str, Any], steps: tuple[str, ...], data: Any
) -> dict[str, tuple[str, int]] | None:
    """For each of `steps` that limits concurrency per key: (its key of `data`, the limit)."""
    out: dict[str, tuple[str, int]] = {}
    for name in steps:
        config = configs.get(name)
        if isinstance(config, EventConfig) and config.concurrency_per_key:
            out[name] = (key_value(config, data), config.concurrency_per_key)
    return out or None


def describe(config: EventConfig) -> str:
    """The flow control of an event step in a few words (`stepline steps`), or ""."""
    if not config.concurrency_per_key or config.key is None:
        return ""
    key = config.key if isinstance(config.key, str) else getattr(config.key, "__name__", "fn")
    return f"key {key}: {config.concurrency_per_key} at a time"
