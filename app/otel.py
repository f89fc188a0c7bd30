"""OpenTelemetry export (the `stepline[otel]` extra): every handler run becomes an OTLP span.

Turn it on with `STEPLINE_OTEL=1`; the exporter reads the standard `OTEL_EXPORTER_OTLP_*`
variables (endpoint, headers) and `OTEL_SERVICE_NAME`. Stepline's trace ids are W3C trace ids,
so one trace id runs from an incoming request's `traceparent` through every step the request
causes, and the Workbench's own span store keeps working beside the export.

Shape of a trace: the run that begins it (an API request, or a cron fire) is the entry span, a
child of the caller's span when the request carried a `traceparent`. Each event run is a child
of that entry span. Messages carry the trace id, not the emitting span's id, so a chain
A -> B -> C shows as siblings under the entry rather than nested. An emit from outside any step
(`stepline emit`, `POST /_stepline/emit`, a test harness) begins its trace with no run, so it is
exported as the entry span itself (`emit <topic>`, a root PRODUCER span): the runs it causes
never hang under a parent that was never exported.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import re
import time
from typing import Any

from app.errors import ConfigError
from app.middleware import Middleware, Run, RunOutcome
from app.redact import redact
from app.types import Batch

__all__ = ["Tracing", "tracing_from_env"]

_HEX32 = re.compile(r"[0-9a-f]{32}")
_trace_next: contextvars.ContextVar[int | None] = contextvars.ContextVar("trace", default=None)
_span_next: contextvars.ContextVar[int | None] = contextvars.ContextVar("span", default=None)
_KEY = "otel"


def _trace_int(trace_id: str) -> int:
    """Stepline's trace id as an OTel one: itself when W3C-shaped (always, unless a dev client
    picked its own x-trace-id), else a stable hash of it."""
    if _HEX32.fullmatch(trace_id) and trace_id != "0" * 32:
        return int(trace_id, 16)
    return int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:16], "big") or 1


def _entry_span_id(trace: int) -> int:
    """The span id of a trace's entry run, computable by every later run of the trace."""
    digest = hashlib.sha256(trace.to_bytes(16, "big") + b"stepline-entry").digest()
    return int.from_bytes(digest[:8], "big") or 1


class _Ids:
    """Wraps the SDK's id generator so an entry span gets the ids Stepline chose for it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def generate_trace_id(self) -> int:
        value = _trace_next.get()
        return value if value is not None else int(self._inner.generate_trace_id())

    def generate_span_id(self) -> int:
        value = _span_next.get()
        return value if value is not None else int(self._inner.generate_span_id())

    def is_trace_id_random(self) -> bool:
        return True  # Stepline's trace ids are random 128-bit, like the SDK's own

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Tracing(Middleware):
    """Middleware exporting each run through `provider` (an SDK `TracerProvider`)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        self._tracer = provider.get_tracer("stepline")
        if hasattr(self._tracer, "id_generator"):
            self._tracer.id_generator = _Ids(self._tracer.id_generator)

    def before_run(self, run: Run) -> None:
        trace = self._trace
        tid = _trace_int(run.trace_id)
        entry = run.request is not None or (
            run.delivery is not None and run.delivery.topic.startswith("cron:")
        )
        context = None
        if run.request is not None:
            given = self._propagator.extract(dict(run.request.headers.items()))
            parent = trace.get_current_span(given).get_span_context()
            if parent.is_valid and parent.trace_id == tid:
                context = given
        elif not entry:
            parent = trace.SpanContext(
                tid,
                _entry_span_id(tid),
                is_remote=True,
                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
            )
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        attributes: dict[str, Any] = {
            "stepline.step": run.name,
            "stepline.kind": run.kind,
            "stepline.attempt": run.attempt,
            "stepline.trace_id": run.trace_id,
        }
        if run.span.topic:
            attributes["stepline.topic"] = run.span.topic
        kind = trace.SpanKind.SERVER if run.request is not None else trace.SpanKind.CONSUMER
        tokens = (_trace_next.set(tid), _span_next.set(_entry_span_id(tid))) if entry else None
        try:
            span = self._tracer.start_span(
                run.name,
                context=context,
                kind=kind,
                attributes=attributes,
                start_time=time.time_ns(),
            )
        finally:
            if tokens is not None:
                _trace_next.reset(tokens[0])
                _span_next.reset(tokens[1])
        run.notes[_KEY] = span

    def on_commit(self, batch: Batch) -> None:
        # A step's own writes always carry its span; messages alone come from outside any step.
        if batch.spans or batch.outcomes or not batch.messages:
            return
        from opentelemetry.context import Context

        begun: set[str] = set()
        for message in batch.messages:
            # A cron run triggered by hand is its trace's entry itself (see before_run).
            if message.topic.startswith("cron:") or message.trace_id in begun:
                continue
            begun.add(message.trace_id)
            tid = _trace_int(message.trace_id)
            tokens = (_trace_next.set(tid), _span_next.set(_entry_span_id(tid)))
            try:
                span = self._tracer.start_span(
                    f"emit {message.topic}",
                    context=Context(),  # a root: nothing else began this trace
                    kind=self._trace.SpanKind.PRODUCER,
                    attributes={
                        "stepline.topic": message.topic,
                        "stepline.trace_id": message.trace_id,
                    },
                )
            finally:
                _trace_next.reset(tokens[0])
                _span_next.reset(tokens[1])
            span.end()

    def after_run(self, run: Run, outcome: RunOutcome) -> None:
        span = run.notes.pop(_KEY, None)
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("stepline.outcome", outcome)
        if outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, redact(run.span.error or outcome)))
        span.end()


def tracing_from_env(enabled: bool) -> Tracing | None:
    """The exporting middleware when `STEPLINE_OTEL` is on; a clear error without the extra."""
    if not enabled:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"STEPLINE_OTEL=1 needs the OpenTelemetry extra ({exc.name} is "
            "missing): pip install 'stepline[otel]'"
        ) from None
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "stepline")})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider)
