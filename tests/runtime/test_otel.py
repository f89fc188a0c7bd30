"""OpenTelemetry export: a `traceparent` in, the same trace id on every exported span of
every step the request causes, on every backend."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the stepline[otel] extra is not installed")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from app.errors import ConfigError
from app.otel import Tracing, tracing_from_env

CHAIN = {
    "api_step.py": """
        config = {"type": "api", "name": "OtOrder", "path": "/ot/orders", "method": "POST",
                  "emits": ["ot.placed"]}

        async def handler(req, ctx):
            await ctx.emit("ot.placed", req.body)
            return {"status": 202, "body": {"trace_id": ctx.trace_id}}
    """,
    "charge_step.py": """
        config = {"type": "event", "name": "OtCharge", "subscribes": ["ot.placed"],
                  "emits": ["ot.charged"], "retries": 2}

        async def handler(data, ctx):
            if ctx.attempt == 1:
                raise ConnectionError("provider timed out")
            await ctx.emit("ot.charged", data)
    """,
    "ship_step.py": """
        config = {"type": "event", "name": "OtShip", "subscribes": ["ot.charged"]}

        def handler(data, ctx):
            pass
    """,
}

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def exporter_for(h) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    h.runtime.add_middleware(Tracing(provider))
    return exporter


async def test_a_traceparent_continues_through_every_step(make_app):
    h = make_app(CHAIN, mode="start")  # a client's trace id is honoured in any mode
    exporter = exporter_for(h)
    async with h:
        response = await h.post(
            "/ot/orders",
            json={"id": 1},
            headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert response.status_code == 202
        assert response.headers["x-trace-id"] == CALLER_TRACE
        await h.drain()
        stored = [s for s in await h.spans(trace_id=CALLER_TRACE)]
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["OtCharge", "OtCharge", "OtOrder", "OtShip"]
    assert {format(s.context.trace_id, "032x") for s in spans} == {CALLER_TRACE}
    assert [s.step for s in stored] == ["OtOrder", "OtCharge", "OtCharge", "OtShip"]
    entry = next(s for s in spans if s.name == "OtOrder")
    assert entry.kind == SpanKind.SERVER
    assert format(entry.parent.span_id, "016x") == CALLER_SPAN
    for s in spans:
        if s is not entry:  # every step's run hangs under the request that caused it
            assert s.parent.span_id == entry.context.span_id and s.kind == SpanKind.CONSUMER
    failed = [s for s in spans if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1 and "provider timed out" in failed[0].status.description
    assert failed[0].attributes["stepline.outcome"] == "retry"
    assert len({s.context.span_id for s in spans}) == 4


async def test_without_a_traceparent_the_request_starts_the_trace(make_app):
    h = make_app(CHAIN)
    exporter = exporter_for(h)
    async with h:
        response = await h.post("/ot/orders", json={"id": 2})
        trace_id = response.headers["x-trace-id"]
        await h.drain()
    spans = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}
    (entry,) = [s for s in spans if s.name == "OtOrder"]
    assert entry.parent is None


async def test_an_emit_from_outside_a_step_is_the_exported_root_of_its_trace(make_app):
    h = make_app(CHAIN)
    exporter = exporter_for(h)
    async with h:
        trace_id = await h.emit("ot.placed", {"id": 3})  # as `stepline emit` does
        await h.drain()
        admin = await h.post("/_stepline/emit", json={"topic": "ot.charged", "data": {"id": 4}})
        assert admin.status_code == 202, admin.text
        await h.drain()
    spans = exporter.get_finished_spans()
    exported = {s.context.span_id for s in spans}
    for s in spans:  # every parent is a span the collector received, or there is none
        assert s.parent is None or s.parent.span_id in exported, s.name
    mine = [s for s in spans if format(s.context.trace_id, "032x") == trace_id]
    assert sorted(s.name for s in mine) == ["OtCharge", "OtCharge", "OtShip", "emit ot.placed"]
    (root,) = [s for s in mine if s.parent is None]
    assert root.name == "emit ot.placed" and root.kind == SpanKind.PRODUCER
    assert all(s.parent.span_id == root.context.span_id for s in mine if s is not root)
    other = [s for s in spans if s.context.trace_id == _id(admin.json()["trace_id"])]
    assert sorted(s.name for s in other) == ["OtShip", "emit ot.charged"]


def _id(trace_id: str) -> int:
    return int(trace_id, 16)


def test_export_is_off_unless_asked_and_needs_only_the_extra():
    assert tracing_from_env(False) is None
    tracing = tracing_from_env(True)  # the exporter is installed with the dev extras
    assert isinstance(tracing, Tracing)


def test_a_missing_extra_says_which_pip_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_exporter(name, *args, **kwargs):
        if name.startswith("opentelemetry.exporter"):
            raise ImportError("no exporter", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_exporter)
    with pytest.raises(ConfigError, match=r"pip install 'stepline\[otel\]'"):
        tracing_from_env(True)
