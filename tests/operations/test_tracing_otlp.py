"""OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, nothing at all when no exporter is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from onbehalf.stack import PROJECT_ROOT
from tests.support import wait_until

PROBE = """
import sys
from opentelemetry import trace
from libs.common import tracing

on = tracing.configure(service="probe", trace_file=None)
print("enabled" if on else "disabled", type(trace.get_tracer_provider()).__name__)
if on:
    with tracing._tracer().start_as_current_span("probe span"):
        pass
    trace.get_tracer_provider().shutdown()  # flushes the batch to the collector
"""


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A real HTTP server standing in for an OpenTelemetry collector's OTLP/HTTP receiver."""
    received: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ONBEHALF_TRACE"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_spans_go_to_the_otlp_endpoint(collector: tuple[str, list[tuple[str, bytes]]]) -> None:
    url, received = collector
    assert _probe(OTEL_EXPORTER_OTLP_ENDPOINT=url).startswith("enabled")
    wait_until(lambda: received, timeout=10, what="an OTLP export")
    path, body = received[0]
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "onbehalf-probe"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["probe span"]


def test_without_an_exporter_nothing_is_set_up() -> None:
    # The global provider stays OpenTelemetry's proxy to its no-op one; an empty endpoint (as
    # deploy/kubernetes/settings.yaml ships it) is no endpoint.
    assert _probe() == "disabled ProxyTracerProvider"
    assert _probe(OTEL_EXPORTER_OTLP_ENDPOINT="") == "disabled ProxyTracerProvider"
