"""`GET /metrics`: the counters an operator reads after a chain with a retry and a dead letter,
and the queue figures read from the backend."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.metrics import Metrics
from app.middleware import Run
from app.registry import Step
from app.step_config import CronConfig
from app.testing import Harness
from app.types import Span

CHAIN = {
    "api_step.py": """
        config = {"type": "api", "name": "MxOrder", "path": "/mx/orders", "method": "POST",
                  "emits": ["mx.placed"]}

        async def handler(req, ctx):
            await ctx.emit("mx.placed", req.body)
            return {"status": 202, "body": {"trace_id": ctx.trace_id}}
    """,
    "charge_step.py": """
        config = {"type": "event", "name": "MxCharge", "subscribes": ["mx.placed"],
                  "emits": ["mx.charged"], "retries": 3}

        async def handler(data, ctx):
            if ctx.attempt == 1:
                raise ConnectionError("payment provider timed out")
            await ctx.emit("mx.charged", data)
    """,
    "ship_step.py": """
        config = {"type": "event", "name": "MxShip", "subscribes": ["mx.charged"],
                  "retries": 2}

        async def handler(data, ctx):
            raise ValueError("no courier for this address")
    """,
    "parked_step.py": """
        config = {"type": "event", "name": "MxParked", "subscribes": ["mx.parked"]}

        async def handler(data, ctx):
            pass
    """,
}


async def scrape(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await h.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_after_a_chain_with_a_retry_and_a_dead_letter(make_app):
    async with make_app(CHAIN) as h:
        before = await scrape(h)  # the registry is per process: compare with before
        assert (await h.post("/mx/orders", json={"id": 1})).status_code == 202
        await h.drain()
        after = await scrape(h)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("stepline_runs_total", step="MxOrder", kind="api", outcome="ok") == 1
    assert delta("stepline_runs_total", step="MxCharge", kind="event", outcome="retry") == 1
    assert delta("stepline_runs_total", step="MxCharge", kind="event", outcome="ok") == 1
    assert delta("stepline_runs_total", step="MxShip", kind="event", outcome="retry") == 1
    assert delta("stepline_runs_total", step="MxShip", kind="event", outcome="dead") == 1
    assert delta("stepline_retries_total", step="MxCharge") == 1
    assert delta("stepline_retries_total", step="MxShip") == 1
    assert delta("stepline_dead_letters_total", step="MxShip") == 1
    assert delta("stepline_dead_letters_total", step="MxCharge") == 0
    assert delta("stepline_run_duration_seconds_count", step="MxCharge", kind="event") == 2
    assert value(after, "stepline_queue_depth", step="MxShip", state="dead") == 1


async def test_queue_depth_and_oldest_age_come_from_the_backend(make_app):
    async with make_app(CHAIN) as h:
        await h.runtime.engine.stop(0)  # nobody consumes: the events wait in the queue
        await h.runtime.emit("mx.parked", {"n": 1})
        await h.runtime.emit("mx.parked", {"n": 2})
        samples = await scrape(h)
    assert value(samples, "stepline_queue_depth", step="MxParked", state="queued") == 2
    assert value(samples, "stepline_queue_oldest_age_seconds", step="MxParked") >= 0
    assert ("stepline_queue_oldest_age_seconds", (("step", "MxParked"),)) in samples


async def test_metrics_need_the_token_outside_dev(make_app):
    h = make_app(CHAIN, mode="start", workbench_token="s3cret-token-for-metrics")
    async with h:
        assert (await h.get("/metrics")).status_code == 401
        ok = await h.get("/metrics", headers={"authorization": "Bearer s3cret-token-for-metrics"})
        assert ok.status_code == 200 and "stepline_runs_total" in ok.text


async def test_metrics_can_be_turned_off(make_app):
    async with make_app(CHAIN, metrics=False) as h:
        assert (await h.get("/metrics")).status_code == 404


def _cron_run(step: Step, attempt: int, seconds: float) -> Run:
    span = Span("t", step.name, step.kind, 0.0, attempt=attempt, duration_ms=seconds * 1000)
    return Run(step, ctx=None, span=span)  # type: ignore[arg-type]


def test_a_reloaded_step_counts_into_the_same_series_and_cron_fires_count_first_attempts():
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def loaded() -> Step:  # `stepline dev` makes a new Step on every reload
        config = CronConfig(name="MxNightly", cron="0 3 * * *")
        return Step(config=config, handler=lambda ctx: None, file=Path("x"), is_async=True)

    labels = {"step": "MxNightly", "kind": "cron"}
    runs_ok = sample("stepline_runs_total", **labels, outcome="ok")
    retries = sample("stepline_retries_total", step="MxNightly")
    fires = sample("stepline_cron_fires_total", step="MxNightly")
    slow = sample("stepline_run_duration_seconds_bucket", **labels, le="2.5")
    fast = sample("stepline_run_duration_seconds_bucket", **labels, le="0.005")
    metrics = Metrics()
    first, reloaded = loaded(), loaded()
    metrics.after_run(_cron_run(first, attempt=1, seconds=2.0), "retry")
    metrics.after_run(_cron_run(first, attempt=2, seconds=0.004), "ok")
    metrics.after_run(_cron_run(reloaded, attempt=1, seconds=0.005), "ok")  # on a bound: in it

    assert sample("stepline_runs_total", **labels, outcome="ok") - runs_ok == 2
    assert sample("stepline_retries_total", step="MxNightly") - retries == 1
    assert sample("stepline_cron_fires_total", step="MxNightly") - fires == 2  # not the retry
    assert sample("stepline_run_duration_seconds_bucket", **labels, le="0.005") - fast == 2
    assert sample("stepline_run_duration_seconds_bucket", **labels, le="2.5") - slow == 3
