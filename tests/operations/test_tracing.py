"""One order is one trace: client -> orders -> cart -> catalog -> relay -> audit, across HTTP and NATS."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from onbehalf.stack import Stack, start_stack
from tests.support import Api, audit_events, build_world, ok, wait_until

ADMIN = "admin@trace.test"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path, str]]:
    """A stack whose every process appends its finished spans to one JSON-lines file."""
    workdir = tmp_path_factory.mktemp("traced")
    trace_file = workdir / "spans.jsonl"
    password = secrets.token_urlsafe(12)
    stack = start_stack(
        workdir / "stack",
        admin_email=ADMIN,
        admin_password=password,
        extra_env={"ONBEHALF_TRACE_FILE": str(trace_file)},
    )
    try:
        yield stack, trace_file, password
    finally:
        stack.stop()


def _spans(trace_file: Path) -> list[dict[str, Any]]:
    if not trace_file.exists():
        return []
    return [json.loads(line) for line in trace_file.read_text().splitlines() if line.strip()]


def _placed(events: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    # By the end of the type, which names the event in both the v1 and the reverse-DNS form.
    return [
        e
        for e in events
        if e["type"].endswith("orders.order.placed")
        and (e.get("data") or {}).get("order_id") == order_id
    ]


def test_the_spans_of_one_order_form_one_trace(traced: tuple[Stack, Path, str]) -> None:
    stack, trace_file, password = traced
    # The client side: the SDK's in-memory exporter, and httpx instrumented on this client only.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.tracing")
    with httpx.Client(timeout=15.0) as client:
        admin = Api(stack=stack, client=client).login(ADMIN, password)
        world = build_world(admin)
        acting, _ = world.act_as(world.login(world.rep), world.org_a)
        ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
        try:
            with tracer.start_as_current_span("client: place an order") as root:
                order = ok(
                    acting.post("orders", "/v1/orders", headers={"Idempotency-Key": "trace-1"}),
                    201,
                )
        finally:
            HTTPXClientInstrumentor.uninstrument_client(client)
        trace_id = f"{root.get_span_context().trace_id:032x}"

        reviewer_user = world.staff(roles=["security_reviewer"], permissions=[], caretaker_of=[])
        reviewer = admin.login(reviewer_user["email"])
        wait_until(
            lambda: _placed(audit_events(reviewer), order["id"]),
            timeout=30,
            what="the order's event in the audit log",
        )
        # The event names the span that wrote it (CloudEvents `traceparent`), signed and
        # chained with the rest of the envelope: the chain still verifies.
        stored = ok(reviewer.get("audit", "/v1/audit/events", params={"format": "cloudevents"}))
        envelopes = _placed(stored if isinstance(stored, list) else stored["items"], order["id"])
        assert ok(reviewer.get("audit", "/v1/audit/verify"))["ok"] is True

    assert len(envelopes) == 1
    assert envelopes[0]["traceparent"].split("-")[1] == trace_id
    client_spans = exporter.get_finished_spans()
    assert {f"{s.context.trace_id:032x}" for s in client_spans if s.context} == {trace_id}
    assert any(s.name.startswith("POST") for s in client_spans)  # httpx's client span

    client_ids = {f"{s.context.span_id:016x}" for s in client_spans if s.context}

    def audited() -> list[dict[str, Any]] | None:
        spans = [s for s in _spans(trace_file) if s["trace_id"] == trace_id]
        consumed = [
            s
            for s in spans
            if s["service"] == "onbehalf-audit"
            and s["name"] == "consume events.orders.order.placed"
        ]
        # A span is written when it ends, a parent after its children (the order's server span
        # after its answer, which can be after audit's span): wait for every parent too.
        ids = {s["span_id"] for s in spans} | client_ids
        whole = all(s["parent_id"] in ids for s in spans)
        return spans if consumed and whole else None

    spans = wait_until(audited, timeout=30, what="audit's span of the order's event")
    names = {(s["service"], s["name"], s["kind"]) for s in spans}
    # orders answers the client's request (FastAPI), asks cart for the order snapshot (NATS),
    # cart asks catalog for prices (NATS), the relay publishes the event, audit consumes it.
    assert ("onbehalf-orders", "POST /v1/orders", "SERVER") in names
    assert ("onbehalf-orders", "request cart.order_snapshot", "CLIENT") in names
    assert ("onbehalf-cart", "serve cart.order_snapshot", "SERVER") in names
    assert ("onbehalf-cart", "request catalog.quote", "CLIENT") in names
    assert ("onbehalf-catalog", "serve catalog.quote", "SERVER") in names
    relay = [
        s
        for s in spans
        if (s["service"], s["name"], s["kind"])
        == ("onbehalf-orders", "publish events.orders.order.placed", "PRODUCER")
    ]
    assert len(relay) == 1
    consumed = [
        s
        for s in spans
        if (s["service"], s["name"]) == ("onbehalf-audit", "consume events.orders.order.placed")
    ]
    # Audit's span is the child of the relay's: the context travelled in the NATS headers.
    assert [s["parent_id"] for s in consumed] == [relay[0]["span_id"]]
    # And every span of the servers descends from the client's root.
    ids = {s["span_id"] for s in spans} | client_ids
    assert all(s["parent_id"] in ids for s in spans)
