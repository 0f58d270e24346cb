"""The audit API serves the stored CloudEvents exactly as emitted: the SDK parses every item,
and anyone recomputes the hash chain from what the API returns (docs/audit.md#cloudevents-out)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from libs.common.audit_chain import GENESIS
from libs.common.signing import envelope_object
from tests.cart.people import acting_staff, reviewer
from tests.support import Api, World, ok, unique, wait_until

BATCH = "application/cloudevents-batch+json"


def _recipe(prev_hash: str, item: dict[str, Any]) -> str:
    """The documented recipe, from the item alone: sha256(prev + "\\n" + sorted compact JSON)."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _data(event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    return data if isinstance(data, dict) else {}


def _whole_chain(audit: Api) -> tuple[list[CloudEvent], str, list[str]]:
    """Every page, oldest first, following Link; the SDK parses every item; the chain is
    recomputed from the genesis and held against each page's own chain headers."""
    events: list[CloudEvent] = []
    head = GENESIS
    pages: list[str] = []
    url: str | None = audit.stack.url("audit") + "/v1/audit/events?order=asc&limit=200"
    while url:
        response = audit.client.get(url, headers=audit.headers({"Accept": BATCH}))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(BATCH)
        items = response.json()
        assert response.headers["Audit-Chain-Prev-Hash"] == head
        for item in items:
            event = JSONFormat().read(CloudEvent, json.dumps(item).encode())
            assert isinstance(event, CloudEvent) and event.get_specversion() == "1.0"
            # What the SDK read is the item, every attribute, extension and the data.
            assert envelope_object(event) == item
            events.append(event)
            head = _recipe(head, item)
        assert response.headers["Audit-Chain-Head"] == head
        pages.append(f"{len(items)} events, chain {head[:12]}…")
        url = httpx.Response(200, headers=response.headers).links.get("next", {}).get("url")
    return events, head, pages


def test_the_sdk_parses_every_event_and_the_chain_recomputes(world: World) -> None:
    acting, _staff, session = acting_staff(world)
    ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    order = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    audit = reviewer(world)

    def order_audited() -> bool:
        listed = ok(
            audit.get(
                "audit", "/v1/audit/events", params={"type": "com.onbehalf.orders.order.placed"}
            )
        )
        return any(item["data"].get("order_id") == order["id"] for item in listed["items"])

    wait_until(order_audited, what="the order in the audit log")
    events, head, pages = _whole_chain(audit)

    placed = [e for e in events if e.get_type() == "com.onbehalf.orders.order.placed"]
    assert all(e.get_source().startswith("urn:onbehalf:service:") for e in events)
    mine = next(e for e in placed if _data(e).get("order_id") == order["id"])
    attributes = mine.get_attributes()
    assert attributes["actingsessionid"] == session["session_id"]
    assert attributes["subjectorgid"] == world.org_a["id"]
    assert attributes["datacontenttype"] == "application/json"
    # The recomputed head is a head the audit service itself vouches for.
    verified = ok(audit.get("audit", "/v1/audit/verify", params={"anchor": head}))
    assert verified["ok"] and verified["anchor_seq"] == len(events)
    print(f"\nSDK parsed {len(events)} CloudEvents in {len(pages)} page(s) ({'; '.join(pages)});")
    print(f"recomputed chain head {head} = audit anchor at seq {verified['anchor_seq']}")


def test_a_filtered_page_is_served_as_emitted_and_the_friendly_query_is_unchanged(
    world: World,
) -> None:
    _acting, _staff, session = acting_staff(world)
    audit = reviewer(world)
    wanted = {
        "session_id": session["session_id"],
        "type": "com.onbehalf.identity.acting_session.started",
    }
    friendly = wait_until(
        lambda: ok(audit.get("audit", "/v1/audit/events", params=wanted))["items"],
        what="the acting session in the audit log",
    )
    served = ok(audit.get("audit", "/v1/audit/events", params={**wanted, "format": "cloudevents"}))
    assert [item["id"] for item in served] == [item["id"] for item in friendly]
    assert served[0]["type"] == "com.onbehalf.identity.acting_session.started"
    assert served[0]["source"] == "urn:onbehalf:service:identity"
    assert "signature" in served[0] and "hash" not in served[0]
    assert _recipe(friendly[0]["prev_hash"], served[0]) == friendly[0]["hash"]
    # The bare name (the v1 type, and the NATS subject's tail) filters the same records.
    bare = {**wanted, "type": "identity.acting_session.started"}
    assert ok(audit.get("audit", "/v1/audit/events", params=bare))["items"] == friendly
