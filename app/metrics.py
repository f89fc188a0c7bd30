"""Prometheus metrics: what an operator watches, served at `GET /metrics`.

Counters and histograms live in one process-wide registry (prometheus-client's default), fed
by the `Metrics` middleware and by integrations through `count_llm_call` and
`count_notification`. Queue figures are read from the backend when `/metrics` is scraped, so
they cover every process sharing it. Under `stepline start --workers N` each worker writes its
counters to `PROMETHEUS_MULTIPROC_DIR` (set by `start`) and the server adds them up.

Names (all prefixed `stepline_`): runs_total{step,kind,outcome}, run_duration_seconds{step,kind},
retries_total{step}, dead_letters_total{step}, cron_fires_total{step},
queue_depth{step,state}, queue_oldest_age_seconds{step}, llm_calls_total{model,outcome},
llm_tokens_total{model,kind}, notifications_total{provider,outcome}.

prometheus-client (with the HTTP-server modules it imports) is loaded on the first run or
scrape, not at start: it is ~4 MiB of an idle process's memory.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from app.middleware import Middleware, Run, RunOutcome

if TYPE_CHECKING:
    from app.registry import Step

__all__ = ["Metrics", "count_llm_call", "count_notification", "render"]

_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
)


@dataclass(frozen=True, slots=True)
class _Families:
    runs: Any
    duration: Any
    retries: Any
    dead: Any
    cron: Any
    llm_calls: Any
    llm_tokens: Any
    notifications: Any


@functools.cache
def _families() -> _Families:
    """The process's metrics, registered (and prometheus-client imported) on first use; under
    `start --workers N`, PROMETHEUS_MULTIPROC_DIR is set long before."""
    from prometheus_client import Counter, Histogram

    return _Families(
        runs=Counter(
            "stepline_runs",
            "Handler runs by step, kind and outcome "
            "(ok, retry, dead for events and cron; ok, failed for API steps).",
            ["step", "kind", "outcome"],
        ),
        duration=Histogram(
            "stepline_run_duration_seconds",
            "Time a handler run took.",
            ["step", "kind"],
            buckets=_BUCKETS,
        ),
        retries=Counter("stepline_retries", "Runs that ended in a scheduled retry.", ["step"]),
        dead=Counter(
            "stepline_dead_letters", "Deliveries moved to the dead-letter list.", ["step"]
        ),
        cron=Counter("stepline_cron_fires", "Cron ticks that ran (first attempts).", ["step"]),
        llm_calls=Counter(
            "stepline_llm_calls", "Calls to the LLM by model and outcome.", ["model", "outcome"]
        ),
        llm_tokens=Counter(
            "stepline_llm_tokens",
            "LLM tokens by model and kind (prompt, completion).",
            ["model", "kind"],
        ),
        notifications=Counter(
            "stepline_notifications",
            "Notifications by provider and outcome.",
            ["provider", "outcome"],
        ),
    )


def __getattr__(name: str) -> Any:
    # CONTENT_TYPE_LATEST: read from the library, which is imported only when it is needed.
    if name == "CONTENT_TYPE_LATEST":
        from prometheus_client import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Bound:
    """One step's labelled children, looked up once: a run then costs one dict lookup and a few
    bound-method calls (`.labels()` checks and joins its values and takes a lock every time)."""

    __slots__ = ("cron", "kind", "name", "observe", "outcomes", "step")

    def __init__(self, step: Step) -> None:
        families = _families()
        # Held so that `id(step)`, the cache key, cannot be reused by another object.
        self.step = step
        self.name, self.kind = step.name, step.kind
        self.observe = _observer(families.duration.labels(self.name, self.kind))
        self.cron = _incrementer(families.cron.labels(self.name)) if self.kind == "cron" else None
        # Filled on first sight of each outcome, so no series is listed that cannot happen
        # (an event step never ends "failed").
        self.outcomes: dict[str, Callable[[], None]] = {}

    def counter(self, outcome: str) -> Callable[[], None]:
        """What counts a run ending in `outcome`: one call, whatever it adds up."""
        families = _families()
        run = _incrementer(families.runs.labels(self.name, self.kind, outcome))
        extra = {"retry": families.retries, "dead": families.dead}.get(outcome)
        if extra is None:
            count = run
        else:
            also = _incrementer(extra.labels(self.name))

            def count() -> None:
                run()
                also()

        self.outcomes[outcome] = count
        return count


# The public `inc` and `observe` re-check on every call what a child made by `.labels()`
# guarantees (it has all its labels, the amount is >= 0) and look for an exemplar: a third of
# the hook's time. These write the child's values directly, as those methods do, and fall back
# to the public methods if a prometheus-client release stores them differently.
def _incrementer(child: Any) -> Callable[[], None]:
    value: Any = getattr(child, "_value", None)
    if not callable(getattr(value, "inc", None)):
        return cast("Callable[[], None]", child.inc)
    return functools.partial(value.inc, 1)


def _observer(child: Any) -> Callable[[float], None]:
    try:
        add_sum = child._sum.inc
        counts = tuple(bucket.inc for bucket in child._buckets)
        bounds = tuple(float(bound) for bound in child._upper_bounds)
    except (AttributeError, TypeError, ValueError):
        return cast("Callable[[float], None]", child.observe)
    if len(counts) != len(bounds) or not bounds or bounds[-1] != math.inf:
        return cast("Callable[[float], None]", child.observe)

    def observe(seconds: float) -> None:
        add_sum(seconds)
        counts[bisect.bisect_left(bounds, seconds)](1)  # the first bucket with bound >= seconds

    return observe


class Metrics(Middleware):
    """Counts every run; cheap enough to stay on (see bench/metrics_overhead.py)."""

    _MAX_STEPS = 4096
    """Bound on the cache: `stepline dev` makes new Step objects on every reload."""

    def __init__(self) -> None:
        self._steps: dict[int, _Bound] = {}

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        # The hot path: one dict lookup per run, then the pre-bound children.
        step = run.step
        bound = self._steps.get(id(step))
        if bound is None:
            bound = self._bind(step)
        span = run.span
        bound.observe(span.duration_ms / 1000)  # the run path timed it; no clock read here
        (bound.outcomes.get(outcome) or bound.counter(outcome))()
        if bound.cron is not None and span.attempt == 1:
            bound.cron()

    def _bind(self, step: Step) -> _Bound:
        if len(self._steps) >= self._MAX_STEPS:
            self._steps.clear()
        bound = self._steps[id(step)] = _Bound(step)
        return bound


def count_llm_call(
    model: str, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0
) -> None:
    """For LLM clients: one call and the tokens it used."""
    families = _families()
    families.llm_calls.labels(model, outcome).inc()
    if prompt_tokens:
        families.llm_tokens.labels(model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        families.llm_tokens.labels(model, "completion").inc(completion_tokens)


def count_notification(provider: str, outcome: str) -> None:
    """For notifiers: one notification sent (`ok`), refused or failed."""
    _families().notifications.labels(provider, outcome).inc()


class _Queues:
    """The backend's queue figures at scrape time, as a collector."""

    def __init__(self, stats: dict[str, dict[str, int]], oldest: dict[str, float]) -> None:
        self._stats = stats
        self._oldest = oldest

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "stepline_queue_depth",
            "Deliveries per step and state (queued, scheduled, in_flight, dead).",
            labels=["step", "state"],
        )
        for step, counts in sorted(self._stats.items()):
            for state, n in sorted(counts.items()):
                depth.add_metric([step, state], n)
        age = GaugeMetricFamily(
            "stepline_queue_oldest_age_seconds",
            "Age of the oldest unsettled delivery per step.",
            labels=["step"],
        )
        for step, seconds in sorted(self._oldest.items()):
            age.add_metric([step], seconds)
        return [depth, age]


async def render(backend: Any) -> bytes:
    """The text exposition for `GET /metrics`."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    _families()  # every family is listed, at zero, before anything was counted
    stats = await backend.queue_stats()
    oldest: dict[str, float] = {}
    now = time.time()
    for item in await backend.queued(1000):  # oldest first: the first seen per step is it
        oldest.setdefault(item["step"], max(now - float(item["created_at"]), 0.0))
    queues = CollectorRegistry(auto_describe=False)
    queues.register(_Queues(stats, oldest))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)
        return generate_latest(counters) + generate_latest(queues)
    return generate_latest(REGISTRY) + generate_latest(queues)
