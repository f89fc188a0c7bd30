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

import asyncio
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
    """One step's labelled children, looked up once, and what its runs have added since the
    last flush. A run adds to plain numbers here (`Metrics.after_run`); the children get the
    sums once per turn of the event loop (`Metrics.flush`): a child's `inc` takes a lock,
    three per run, which was most of the hook's time."""

    __slots__ = (
        "add_sum",
        "bounds",
        "buckets",
        "cron",
        "fires",
        "kind",
        "name",
        "observe",
        "outcomes",
        "ran",
        "seconds",
        "step",
        "tally",
    )

    def __init__(self, step: Step) -> None:
        families = _families()
        # Held so that `id(step)`, the cache key, cannot be reused by another object.
        self.step = step
        self.name, self.kind = step.name, step.kind
        child = families.duration.labels(self.name, self.kind)
        self.observe: Callable[[float], None] | None = None
        try:
            self.add_sum = _incrementer(child._sum)
            self.buckets = tuple(_incrementer(bucket) for bucket in child._buckets)
            self.bounds = tuple(float(bound) for bound in child._upper_bounds)
        except (AttributeError, TypeError, ValueError):
            self.observe = child.observe
        else:
            bounds = self.bounds
            if len(self.buckets) != len(bounds) or not bounds or bounds[-1] != math.inf:
                self.observe = child.observe
        self.tally = [0] * len(self.bounds) if self.observe is None else []
        self.seconds = 0.0
        self.cron = _incrementer(families.cron.labels(self.name)) if self.kind == "cron" else None
        self.fires = 0
        # Filled on first sight of each outcome, so no series is listed that cannot happen
        # (an event step never ends "failed").
        self.outcomes: dict[str, Callable[[float], None]] = {}
        self.ran: dict[str, int] = {}

    def counter(self, outcome: str) -> Callable[[float], None]:
        """What counts `n` runs ending in `outcome`: one call, whatever it adds up."""
        families = _families()
        run = _incrementer(families.runs.labels(self.name, self.kind, outcome))
        extra = {"retry": families.retries, "dead": families.dead}.get(outcome)
        if extra is None:
            count = run
        else:
            also = _incrementer(extra.labels(self.name))

            def count(n: float) -> None:
                run(n)
                also(n)

        self.outcomes[outcome] = count
        return count

    def flush(self) -> None:
        if self.seconds or any(self.tally):
            self.add_sum(self.seconds)
            self.seconds = 0.0
            tally = self.tally
            for i, n in enumerate(tally):
                if n:
                    self.buckets[i](n)
                    tally[i] = 0
        ran, self.ran = self.ran, {}
        for outcome, n in ran.items():
            (self.outcomes.get(outcome) or self.counter(outcome))(n)
        if self.fires and self.cron is not None:
            self.cron(self.fires)
        self.fires = 0


# The public `inc` re-checks on every call what a child made by `.labels()` guarantees (it
# has all its labels, the amount is >= 0) and looks for an exemplar. These write the child's
# value directly, as that method does, and fall back to it if a prometheus-client release
# stores values differently.
def _incrementer(child: Any) -> Callable[[float], None]:
    value: Any = getattr(child, "_value", None)
    if not callable(getattr(value, "inc", None)):
        return cast("Callable[[float], None]", child.inc)
    return cast("Callable[[float], None]", value.inc)


class Metrics(Middleware):
    """Counts every run; cheap enough to stay on (see bench/metrics_overhead.py).

    A run's figures reach prometheus-client at the next turn of the event loop (or at once
    when no loop runs), so before its writes commit, as when each run added them itself."""

    _MAX_STEPS = 4096
    """Bound on the cache: `stepline dev` makes new Step objects on every reload."""

    def __init__(self) -> None:
        self._steps: dict[int, _Bound] = {}
        self._dirty: list[_Bound] = []
        self._flushing: asyncio.AbstractEventLoop | None = None
        """The loop a flush is due on."""

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        # The hot path: one dict lookup per run, then plain arithmetic on the bound.
        step = run.step
        bound = self._steps.get(id(step))
        if bound is None:
            bound = self._bind(step)
        span = run.span
        seconds = span.duration_ms / 1000  # the run path timed it; no clock read here
        if bound.observe is None:
            bound.seconds += seconds
            bound.tally[bisect.bisect_left(bound.bounds, seconds)] += 1  # first bound >= it
        else:
            bound.observe(seconds)
        ran = bound.ran
        ran[outcome] = ran.get(outcome, 0) + 1
        if bound.cron is not None and span.attempt == 1:
            bound.fires += 1
        dirty = self._dirty
        if bound not in dirty:
            dirty.append(bound)
        loop = asyncio._get_running_loop()
        if loop is None:
            self.flush()
        elif self._flushing is not loop:
            # None is due on this loop (a loop that closed before its flush ran took it along).
            self._flushing = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Add what runs counted since the last flush to the prometheus-client children."""
        self._flushing = None
        dirty, self._dirty = self._dirty, []
        for bound in dirty:
            bound.flush()

    def _bind(self, step: Step) -> _Bound:
        if len(self._steps) >= self._MAX_STEPS:
            self.flush()
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
