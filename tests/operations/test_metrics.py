"""Metrics beyond HTTP move with the flow: acting sessions, decisions, outbox backlog, audit lag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from onbehalf.stack import PROJECT_ROOT, SERVICES, Stack
from tests.support import World, ok, wait_until

DASHBOARD = Path(PROJECT_ROOT) / "deploy" / "grafana" / "onbehalf.json"


def _scrape(http: httpx.Client, stack: Stack, service: str) -> str:
    response = http.get(stack.url(service) + "/metrics")
    assert response.status_code == 200
    return response.text


def _value(text: str, sample: str, **labels: str) -> float:
    """The sum of `sample`'s values whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and labels.items() <= found.labels.items():
                total += found.value
    return total


def test_the_flow_moves_the_counters(world: World, stack: Stack, http: httpx.Client) -> None:
    before = {name: _scrape(http, stack, name) for name in ("identity", "orders", "audit")}
    rep = world.login(world.rep)

    refused = rep.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_b["id"], "mode": "full"}
    )
    assert refused.status_code == 403
    reason = refused.json()["reason"]
    acting, _ = world.act_as(rep, world.org_a)
    ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": "metrics-1"}), 201)
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204

    identity = _scrape(http, stack, "identity")

    def moved(sample: str, **labels: str) -> float:
        return _value(identity, sample, **labels) - _value(before["identity"], sample, **labels)

    assert moved("onbehalf_acting_sessions_started_total", mode="full") == 1
    assert moved("onbehalf_acting_sessions_denied_total", reason=reason) == 1
    assert moved("onbehalf_acting_sessions_ended_total", reason="stopped") == 1

    orders = _scrape(http, stack, "orders")
    allowed = "onbehalf_policy_decisions_total"
    assert _value(orders, allowed, allowed="true") > _value(
        before["orders"], allowed, allowed="true"
    )
    # The backlog is measured at the scrape; the relay may or may not have sent the event yet.
    assert re.search(r'^onbehalf_outbox_backlog\{service="orders"\} \d', orders, re.M)
    assert "onbehalf_outbox_publish_failures_total" in orders

    def audited() -> bool:
        lag = "onbehalf_audit_lag_seconds_count"
        return _value(_scrape(http, stack, "audit"), lag) > _value(before["audit"], lag)

    wait_until(audited, timeout=15, what="the audit lag histogram to count the new events")
    assert wait_until(
        lambda: re.search(
            r'^onbehalf_outbox_backlog\{service="orders"\} 0\.0$',
            _scrape(http, stack, "orders"),
            re.M,
        ),
        timeout=15,
        what="orders' outbox backlog back at 0",
    )


def _dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in dashboard["panels"]:
        exprs = [target["expr"] for target in panel.get("targets", [])]
        assert exprs or panel["type"] == "row", f"panel {panel['title']!r} has no query"
        for expr in exprs:
            names |= set(re.findall(r"\bonbehalf_[a-z_]+", expr))
    return names


def test_every_service_freezes_what_start_up_built(stack: Stack, http: httpx.Client) -> None:
    # Start-up's objects (modules, the policy, schemas, statements) are out of the garbage
    # collector's scans, so no full collection walks them under load (docs/performance.md).
    for service in SERVICES:
        frozen = _value(_scrape(http, stack, service), "onbehalf_gc_frozen_objects")
        assert frozen > 10_000, f"{service}: {frozen:.0f} objects frozen"


def test_every_panel_of_the_dashboard_queries_a_metric_of_ours() -> None:
    code = "\n".join(
        path.read_text()
        for folder in ("libs", "services")
        for path in (Path(PROJECT_ROOT) / folder).rglob("*.py")
    )
    metrics = _dashboard_metrics()
    assert len(metrics) >= 8, metrics
    missing = []
    for name in sorted(metrics):
        # Prometheus adds the suffixes: a counter's _total, a histogram's _bucket/_sum/_count.
        base = re.sub(r"_(total|bucket|sum|count|created)$", "", name)
        if f'"{base}"' not in code and f'"{base}_total"' not in code:
            missing.append(name)
    assert not missing, f"the dashboard queries metrics no code defines: {missing}"
