"""Flow control fixed at emit time: ordering keys and debounce.

An event step that declares `key` (a `/`-separated path into the event data, or a function of
the data) and `concurrency_per_key: n` has each delivery stamped with its key when it is
emitted. The backend then hands out, per key, only the first `n` unsettled deliveries in emit
order, so with n = 1 a key's deliveries run one at a time, in order, across every process,
while other keys run in parallel. A delivery that fails keeps its place (and holds its key)
through its retries, until it succeeds or is dead-lettered; a dead letter frees the key and is
replayed with it (behind its key's queue). With `key_on_failure: "release"` a delivery waiting
for its retry frees its key instead, and takes a turn behind its key's queue once due. The key
is computed when the event is emitted, so a path missing from the data fails the emitting run
with a reason, rather than a delivery later.

A step with `debounce` keeps one waiting delivery per debounce key: each emit of that key
replaces its data and moves its due time to the end of a new quiet time, capped at the
burst's first emit + `max_wait`. Once due it takes its ordering key's turn like any other.

A `rate_limit` with a `key` stamps each delivery with its rate key too: the backend's claim
counts each key's starts in the window apart, so one busy key waits while others run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from app.registry import Registry
from app.step_config import EventConfig
from app.types import FlowPlan, Message

__all__ = [
    "KeyMissing",
    "describe",
    "key_value",
    "ordered_steps",
    "partitions",
    "plan",
    "planner",
    "rate_limits",
]


class KeyMissing(ValueError):
    """The ordering key of a step cannot be read from the emitted data."""


def key_value(config: EventConfig, data: Any, spec: Any = None) -> str:
    """The key of `data` for the step of `config`: by `spec`, else the step's `key`."""
    spec = spec if spec is not None else config.key
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
            f"event step {config.name!r} keys its deliveries (key, debounce), but {where}; "
            "emit data that carries it, or change the step's `key`"
        )
    if isinstance(value, str):
        return value
    if type(value) is int:  # what json.dumps gives, without building an encoder per emit
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def plan(config: EventConfig, data: Any) -> FlowPlan | None:
    """The flow control of one delivery of `data` to the step of `config`, if it has any."""
    ordered = config.concurrency_per_key is not None
    bounce = config.debounce
    rate_spec = config.rate_limit.key if config.rate_limit is not None else None
    if not ordered and bounce is None and rate_spec is None:
        return None
    key = key_value(config, data) if ordered else None
    rkey = key_value(config, data, rate_spec) if rate_spec is not None else None
    if bounce is None:
        return FlowPlan(key, config.concurrency_per_key, rate_key=rkey)
    spec = bounce.key if bounce.key is not None else config.key
    # No key at all: the step's deliveries form one burst.
    bkey = key_value(config, data, spec) if spec is not None else ""
    return FlowPlan(
        key, config.concurrency_per_key, bkey, bounce.seconds, bounce.max_wait or 0.0, rkey
    )


def partitions(
    configs: Mapping[str, Any], steps: tuple[str, ...], data: Any
) -> dict[str, FlowPlan] | None:
    """The flow plan of `data` for each of `steps` that declares flow control."""
    out: dict[str, FlowPlan] = {}
    for name in steps:
        config = configs.get(name)
        if isinstance(config, EventConfig) and (found := plan(config, data)) is not None:
            out[name] = found
    return out or None


Planner = Callable[[tuple[str, ...], Message], dict[str, FlowPlan] | None]


def planner(configs: Mapping[str, Any]) -> Planner:
    """`partitions` bound to `configs`, with each tuple of subscribers worked out once: most
    have no flow control at all (None at once), and a step's plan is built by a function made
    for its config, which reads a one-part path with one dict lookup. Any data the quick
    reading does not cover (nested paths, lists, functions, other types, a missing key) goes
    through `plan`, so the keys and the errors are the same."""
    made: dict[tuple[str, ...], Callable[[Any], dict[str, FlowPlan]] | None] = {}

    def partition(steps: tuple[str, ...], message: Message) -> dict[str, FlowPlan] | None:
        fn = made.get(steps)
        if fn is None:
            if steps in made:
                return None
            fn = made[steps] = _for_steps(configs, steps)
            if fn is None:
                return None
        return fn(message.data)  # decoded from the emit's text only here, when a plan reads it

    return partition


def _for_steps(
    configs: Mapping[str, Any], steps: tuple[str, ...]
) -> Callable[[Any], dict[str, FlowPlan]] | None:
    planned = [
        (name, _for_step(config))
        for name in dict.fromkeys(steps)
        if isinstance(config := configs.get(name), EventConfig) and _flows(config)
    ]
    if not planned:
        return None
    if len(planned) == 1:
        ((name, one),) = planned
        return lambda data: {name: one(data)}
    return lambda data: {name: fn(data) for name, fn in planned}


def _flows(config: EventConfig) -> bool:
    """True when `plan` gives the step's deliveries a plan (else it gives None whatever the
    data)."""
    if config.concurrency_per_key is not None or config.debounce is not None:
        return True
    return config.rate_limit is not None and config.rate_limit.key is not None


def _for_step(config: EventConfig) -> Callable[[Any], FlowPlan]:
    """A function giving `plan(config, data)`, quicker for the common plan: an ordering key
    and/or a rate key, each a one-part path, no debounce."""
    limit = config.concurrency_per_key
    rate_spec = config.rate_limit.key if config.rate_limit is not None else None
    key_part = _one_part(config.key) if limit is not None else ""
    rate_part = _one_part(rate_spec) if rate_spec is not None else ""
    if config.debounce is not None or key_part is None or rate_part is None:
        return lambda data: plan(config, data)  # type: ignore[return-value]
    new = tuple.__new__

    def quick(data: Any) -> FlowPlan:
        if type(data) is not dict:
            return plan(config, data)  # type: ignore[return-value]
        key = _text(data.get(key_part)) if key_part else None
        rkey = _text(data.get(rate_part)) if rate_part else None
        # Anything else, missing included, the slow way, which also says what is missing.
        if (key is None and key_part) or (rkey is None and rate_part):
            return plan(config, data)  # type: ignore[return-value]
        return new(FlowPlan, (key, limit, None, 0.0, 0.0, rkey))

    return quick


def _text(value: Any) -> str | None:
    """A str or int key as `key_value` gives it (itself or its str()); None for any other."""
    kind = type(value)
    if kind is str:
        return value
    return str(value) if kind is int else None


def _one_part(spec: Any) -> str | None:
    """The path of a one-part key path ("id"), else None (a function, "repo/number")."""
    if isinstance(spec, str) and "/" not in spec and spec:
        return spec
    return None


def ordered_steps(registry: Registry) -> dict[str, bool]:
    """Per step with an ordering key: whether a delivery waiting for its retry releases it
    (`key_on_failure: "release"`), as the backends apply it."""
    return {
        step.name: step.config.key_on_failure == "release"
        for step in registry.steps.values()
        if isinstance(step.config, EventConfig) and step.config.concurrency_per_key is not None
    }


def rate_limits(registry: Registry) -> dict[str, tuple[int, float, bool]]:
    """Per step with a rate limit: (n, window seconds, per key?), as the backends enforce it."""
    return {
        step.name: (*step.config.rate_limit.window, step.config.rate_limit.key is not None)
        for step in registry.steps.values()
        if isinstance(step.config, EventConfig) and step.config.rate_limit is not None
    }


def _spec(spec: Any) -> str:
    """A key as written: its path, or its function by qualified name (a lambda by where it is
    written, `lambda at review_step.py:38`); "" for none."""
    if spec is None or isinstance(spec, str):
        return spec or ""
    name = getattr(spec, "__qualname__", None) or getattr(spec, "__name__", None)
    code = getattr(spec, "__code__", None)
    if name is None or name.endswith("<lambda>"):
        if code is None:
            return type(spec).__qualname__
        return f"lambda at {code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}"
    return f"{name}()"


def describe(config: EventConfig) -> str:
    """The flow control of an event step in a few words (`stepline steps`, the Workbench):
    every key it declares and every limit, or ""."""
    key = _spec(config.key)
    by = ""  # the debounce's key
    parts = []
    if config.concurrency is not None:
        parts.append(f"{config.concurrency} at a time per process")
    if config.concurrency_per_key:
        released = ", released while a failed one waits to retry"
        held = released if config.key_on_failure == "release" else ""
        parts.append(f"key {key}: {config.concurrency_per_key} at a time{held}")
    if config.debounce is not None:
        wait = f", at most {config.debounce.max_wait:g} s" if config.debounce.max_wait else ""
        by = _spec(config.debounce.key) or key
        # No key at all: the step's deliveries form one burst (see `plan`).
        each = f" per key {by}" if by else " over all its deliveries"
        parts.append(f"debounce {config.debounce.seconds:g} s{wait}{each}")
    if key and not config.concurrency_per_key and key != by:
        parts.append(f"key {key} (unused: no concurrency_per_key or debounce on it)")
    if config.rate_limit is not None:
        n, window = config.rate_limit.window
        per = _spec(config.rate_limit.key)
        each = f" per key {per}" if per else ""
        parts.append(f"at most {n} per {'second' if window == 1 else 'minute'}{each}")
    return "; ".join(parts)
