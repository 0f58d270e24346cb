"""Tracing: OpenTelemetry spans across HTTP and NATS, off (and nearly free) unless configured."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The W3C header (and CloudEvents extension) that carries a span's identity to the next hop.
TRACEPARENT = "traceparent"
# Where an OTLP collector listens: the SDK's own variables, read by its exporter.
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Probes and scrapes are not requests anyone wants to follow.
_EXCLUDED_URLS = "healthz,readyz,metrics"

_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, Any] = {
    "enabled": False,
    "tracer": trace.get_tracer("onbehalf"),
    "shared_process": False,
}
# In a process several services share (onbehalf/colocated.py): the provider of the service
# whose code runs in this context, so that each service's spans carry its own name.
_service_tracing: contextvars.ContextVar[tuple[TracerProvider, trace.Tracer] | None] = (
    contextvars.ContextVar("service_tracing", default=None)
)


def enabled() -> bool:
    """Whether this process records spans. When it does not, every helper here returns at its
    first line: no span objects, no header parsing, no middleware (see configure)."""
    return bool(_state["enabled"])


def _tracer() -> trace.Tracer:
    own = _service_tracing.get()
    if own is not None:
        return own[1]
    tracer: trace.Tracer = _state["tracer"]
    return tracer


def share_process() -> None:
    """Several services will run in this process, each built in a context of its own: from now
    on each configure() gives the service calling it a tracer provider of its own, in its
    context, instead of configuring the process once."""
    _state["shared_process"] = True


class JsonLinesSpanExporter(SpanExporter):
    """Finished spans as one JSON object a line, appended to a file that several processes may
    share (one `write` per line on an O_APPEND descriptor). For tests and for a quick look
    without a collector; production uses OTLP."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), sort_keys=True) + "\n" for span in spans)
        with self._lock:
            for line in lines.splitlines(keepends=True):
                os.write(self._fd, line.encode())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """What the JSON-lines exporter writes for a span: ids in W3C hex, the emitting service."""
    context = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "trace_id": f"{context.trace_id:032x}" if context else None,
        "span_id": f"{context.span_id:016x}" if context else None,
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {key: _jsonable(value) for key, value in (span.attributes or {}).items()},
    }


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def otlp_endpoint() -> str | None:
    for variable in OTLP_ENDPOINT_VARIABLES:
        if value := os.environ.get(variable, "").strip():
            return value
    return None


def configure(*, service: str, trace_file: Path | None) -> bool:
    """Record spans if an exporter is configured: OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
    is set, JSON lines when `trace_file` (ONBEHALF_TRACE_FILE) is. Otherwise the global tracer
    provider stays OpenTelemetry's no-op one and nothing is instrumented. Returns whether
    tracing is on; a second call in the same process changes nothing, unless the process is
    shared (share_process): then each service's call gives its context a provider of its own."""
    shared = bool(_state["shared_process"])
    if shared and _service_tracing.get() is not None:
        return True
    if enabled() and not shared:
        return True
    endpoint = otlp_endpoint()
    if endpoint is None and trace_file is None:
        return False
    provider = _provider(service=service, endpoint=endpoint, trace_file=trace_file)
    if shared:
        _service_tracing.set((provider, provider.get_tracer("onbehalf")))
        if enabled():
            return True
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _state["tracer"] = provider.get_tracer("onbehalf")
    _state["enabled"] = True
    return True


def _provider(*, service: str, endpoint: str | None, trace_file: Path | None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": f"onbehalf-{service}"}))
    if endpoint is not None:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if trace_file is not None:
        # Written as each span ends, so a reader sees a finished request's spans at once.
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    return provider


def instrument_app(app: FastAPI) -> None:
    """Server spans for every request of `app` (continuing the caller's traceparent)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=own[0] if (own := _service_tracing.get()) else trace.get_tracer_provider(),
        excluded_urls=_EXCLUDED_URLS,
    )


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in progress (None when tracing is off or there is none):
    what an event written now stores, so whoever handles it later continues this trace."""
    if not enabled():
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def _parent(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    if not headers or TRACEPARENT not in headers:
        return None
    return _PROPAGATOR.extract(dict(headers))


async def request(
    nc: NATS,
    subject: str,
    payload: bytes,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> Msg:
    """`nc.request`, inside a client span whose traceparent travels in the message headers."""
    if not enabled():  # the hot path's case: no context manager to enter
        return await nc.request(subject, payload, timeout=timeout, headers=headers)
    with client_span(subject, headers) as carried:
        return await nc.request(subject, payload, timeout=timeout, headers=carried)


@contextlib.contextmanager
def client_span(
    subject: str, headers: dict[str, str] | None, *, system: str = "nats"
) -> Iterator[dict[str, str] | None]:
    """A client span for a request on `subject` (over NATS, or `system="in-process"`: answered
    in this process, libs/common/local_requests.py), and the headers to send: the given ones
    plus the span's traceparent."""
    if not enabled():
        yield headers
        return
    with _tracer().start_as_current_span(
        f"request {subject}",
        kind=SpanKind.CLIENT,
        attributes={"messaging.system": system, "messaging.destination.name": subject},
    ):
        carrier = dict(headers or {})
        _PROPAGATOR.inject(carrier)
        yield carrier


@contextlib.contextmanager
def serving(message: Msg) -> Iterator[None]:
    """The server span of a NATS request being answered, child of the requester's span."""
    with serving_request(message.subject, message.headers):
        yield


@contextlib.contextmanager
def serving_request(subject: str, headers: Mapping[str, str] | None) -> Iterator[None]:
    """The server span of a request on `subject` (over NATS or in-process), child of the span
    whose traceparent `headers` carry."""
    if not enabled():
        yield
        return
    with _tracer().start_as_current_span(
        f"serve {subject}",
        context=_parent(headers),
        kind=SpanKind.SERVER,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject},
    ):
        yield


def publish_span(subject: str, traceparent: str | None) -> tuple[Span | None, dict[str, str]]:
    """For the relay: a producer span continuing the trace of the transaction that wrote the
    event (`traceparent`, stored in its outbox row), and the headers carrying it onward. The
    caller ends the span once JetStream has answered."""
    if not enabled() or traceparent is None:
        return None, {}
    span = _tracer().start_span(
        f"publish {subject}",
        context=_PROPAGATOR.extract({TRACEPARENT: traceparent}),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject},
    )
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier


def end_span(span: Span | None, error: BaseException | None = None) -> None:
    if span is None:
        return
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, repr(error)[:200]))
    span.end()


def consumer_spans(messages: Sequence[Msg], *, durable: str) -> list[Span]:
    """One consumer span per message of a batch, each the child of the span that published it.
    They end together when the batch is handled (end_spans)."""
    if not enabled():
        return []
    return [
        _tracer().start_span(
            f"consume {message.subject}",
            context=_parent(message.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": message.subject,
                "messaging.consumer.group.name": durable,
            },
        )
        for message in messages
    ]


@contextlib.contextmanager
def current(spans: Sequence[Span]) -> Iterator[None]:
    """While a batch of one is handled, its span is the current one, so the events its handler
    writes continue that trace. (A larger batch has no single cause to continue.)"""
    if len(spans) != 1:
        yield
        return
    with trace.use_span(spans[0], end_on_exit=False):
        yield


def end_spans(spans: Sequence[Span], error: BaseException | None = None) -> None:
    for span in spans:
        end_span(span, error)
