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

import functools
import os
import time
from dataclasses import dataclass
from typing import Any

from app.middleware import Middleware, Run, RunOutcome

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


class Metrics(Middleware):
    """Counts every run; cheap enough to stay on (see bench/metrics_overhead.py)."""

    def __init__(self) -> None:
        # Labelled children looked up once per step: `.labels()` costs more than `.inc()`.
        self._runs: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        step, kind = run.step.name, run.step.kind
        key = (step, kind, outcome)
        counter = self._runs.get(key)
        if counter is None:
            counter = self._runs[key] = _families().runs.labels(step, kind, outcome)
        counter.inc()
        histogram = self._durations.get(key[:2])
        if histogram is None:
            histogram = self._durations[key[:2]] = _families().duration.labels(step, kind)
        histogram.observe(run.span.duration_ms / 1000)
        if outcome == "retry":
            _families().retries.labels(step).inc()
        elif outcome == "dead":
            _families().dead.labels(step).inc()
        if kind == "cron" and run.attempt == 1:
            _families().cron.labels(step).inc()


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
