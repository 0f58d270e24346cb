"""The contracts between services, in process: names, subjects, rights and wire shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from libs import contracts
from libs.common.bus_permissions import rights
from libs.common.checkout import bearer_of
from libs.common.consumer import PoisonMessage, event_data
from libs.common.events import EventContext, build_event, decode, encode
from libs.contracts.base import BadMessage
from libs.contracts.cart import (
    CartCheckout,
    CartSnapshot,
    CartSnapshotReply,
    CartSnapshotRequest,
    CheckoutOrder,
    CheckoutReply,
)
from libs.contracts.catalog import PriceQuoteRequest
from libs.contracts.identity import ActingSessionEnded
from libs.contracts.orders import OrderedLine, OrderPlaced, Party

CONTEXT = EventContext(
    actor_id="a",
    actor_org_id="s",
    subject_org_id="c",
    subject_user_id=None,
    acting_session_id=None,
    policy_revision="r",
)
ORDER = OrderPlaced(
    order_id="o-1",
    cart_id="c-1",
    cart_version=3,
    total=Decimal("24.00"),
    currency="EUR",
    placed_by=Party(id="u-1", name="Rita Rep"),
    items=[OrderedLine(sku="SKU-1", quantity=2, unit_price=Decimal("12.00"))],
)


def test_every_event_type_is_its_owners_and_published_where_the_owner_may() -> None:
    for event_type, contract in contracts.event_types().items():
        owner = event_type.split(".")[0]
        assert contract.__module__.startswith("libs.contracts."), event_type
        assert contract.subject() == f"events.{event_type}"
        assert f"events.{owner}.>" in rights(owner).publish, event_type


def test_only_the_answering_service_hears_a_request() -> None:
    answers = {"cart.order_snapshot": "cart", "cart.checkout": "cart", "catalog.quote": "catalog"}
    assert set(contracts.requests()) == set(answers)
    for subject, service in answers.items():
        hearers = [
            s
            for s in ("identity", "catalog", "cart", "orders", "audit")
            if subject in rights(s).subscribe
        ]
        assert hearers == [service], subject
    assert "cart.order_snapshot" in rights("orders").publish
    assert "cart.order_snapshot" not in rights("catalog").publish


def test_an_event_keeps_its_wire_shape_through_the_envelope() -> None:
    event = build_event(
        source="/onbehalf/orders", type=ORDER.event_type, data=ORDER.data(), context=CONTEXT
    )
    received = decode(encode(event))
    assert received.get_data() == {
        "order_id": "o-1",
        "cart_id": "c-1",
        "cart_version": 3,
        "total": "24.00",
        "currency": "EUR",
        "placed_by": {"id": "u-1", "name": "Rita Rep"},
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "12.00"}],
    }
    assert event_data(received, OrderPlaced) == ORDER
    assert CheckoutOrder.of(ORDER).items[0].quantity == 2


def test_a_consumer_turns_data_that_breaks_the_contract_into_poison() -> None:
    bad = build_event(
        source="/onbehalf/identity",
        type=ActingSessionEnded.event_type,
        data={"session_id": "a b*>"},
        context=CONTEXT,
    )
    with pytest.raises(PoisonMessage, match="session_id"):
        event_data(bad, ActingSessionEnded)


def test_requests_and_replies_round_trip_and_refuse_what_is_not_theirs() -> None:
    request = PriceQuoteRequest(org_id="c", skus=["A", "B"])
    assert PriceQuoteRequest.decode(request.encode()) == request
    with pytest.raises(BadMessage, match="not a PriceQuoteRequest"):
        PriceQuoteRequest.decode(b'{"skus": "nope"}')
    # An older checkout body with an extra `context` is read for its order only.
    body = b'{"order": {"order_id": "o", "cart_id": "c", "cart_version": 1}, "context": {}}'
    assert CartCheckout.decode(body).order.order_id == "o"
    assert CheckoutReply(ok=True).encode() == b'{"ok":true}'
    assert CartSnapshotRequest.decode(CartSnapshotRequest().encode()) == CartSnapshotRequest()
    snapshot = CartSnapshot(
        cart_id="c-1", org_id="o", version=1, currency="EUR", total=Decimal("1.50"), lines=[]
    )
    assert CartSnapshotReply.decode(CartSnapshotReply(snapshot=snapshot).encode()).snapshot == (
        snapshot
    )


def test_the_bearer_token_comes_from_the_header_only() -> None:
    assert bearer_of({"Authorization": "Bearer abc"}) == "abc"
    assert bearer_of({"Authorization": "Basic abc"}) is None
    assert bearer_of(None) is None


def test_times_in_event_data_are_iso_8601() -> None:
    from libs.contracts.catalog import PromotionEnded

    ended = PromotionEnded(id="p", name="Spring", ended_at=datetime(2026, 3, 1, tzinfo=UTC))
    assert datetime.fromisoformat(ended.data()["ended_at"]) == datetime(2026, 3, 1, tzinfo=UTC)
