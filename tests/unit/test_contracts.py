"""The contracts between services, in process: names, subjects, rights and wire shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs import contracts
from libs.common.audit_chain import canonical_envelope, emitter_of
from libs.common.bus_permissions import rights
from libs.common.checkout import bearer_of
from libs.common.consumer import PoisonMessage, event_data
from libs.common.events import (
    EventContext,
    build_event,
    decode,
    encode,
    nats_subject,
    new_signed_event,
    service_source,
)
from libs.common.signing import EventSigningKey, SignatureProblem
from libs.contracts.base import TYPE_PREFIX, BadMessage, event_name
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
        # Reverse-DNS, then the owner: com.onbehalf.<service>.<entity>.<verb>.
        assert event_type.startswith(TYPE_PREFIX), event_type
        name = event_name(event_type)
        owner = name.split(".")[0]
        assert contract.__module__.startswith("libs.contracts."), event_type
        assert contract.subject() == f"events.{name}" == nats_subject(event_type)
        assert f"events.{owner}.>" in rights(owner).publish, event_type
        assert contracts.contract_of(name) is contracts.contract_of(event_type) is contract
        assert contract.is_type_of(name) and contract.is_type_of(event_type)


def _signed(key: EventSigningKey, *, type: str, source: str) -> dict[str, object]:
    event = build_event(source=source, type=type, data={}, context=CONTEXT, signing_key=key)
    return json.loads(canonical_envelope(event))


def test_the_emitter_is_proved_in_either_form_but_never_a_mix() -> None:
    key = EventSigningKey(service="orders", kid="k1", private_key=Ed25519PrivateKey.generate())
    keys = {key.kid: key.public()}
    subject = "events.orders.order.placed"
    current = _signed(key, type=OrderPlaced.event_type, source=service_source("orders"))
    assert current["source"] == "urn:onbehalf:service:orders"
    assert emitter_of(current, keys, subject=subject) == "orders"
    # A v1 envelope (stored before the reverse-DNS type) still proves its emitter.
    v1 = _signed(key, type="orders.order.placed", source="/onbehalf/orders")
    assert emitter_of(v1, keys, subject=subject) == "orders"
    refused = [
        _signed(key, type=OrderPlaced.event_type, source="/onbehalf/orders"),
        _signed(key, type="orders.order.placed", source=service_source("orders")),
        _signed(key, type=OrderPlaced.event_type, source=service_source("cart")),
        _signed(key, type="com.onbehalf.cart.item.added", source=service_source("orders")),
    ]
    for envelope in refused:
        with pytest.raises(SignatureProblem):
            emitter_of(envelope, keys, subject=subject)
    with pytest.raises(SignatureProblem, match="another subject"):
        emitter_of(current, keys, subject="events.orders.order.cancelled")


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
        source=service_source("orders"), type=ORDER.event_type, data=ORDER.data(), context=CONTEXT
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


def test_a_signed_event_written_without_the_sdk_reads_back_as_the_sdk_would_write_it() -> None:
    key = EventSigningKey(service="orders", kid="k1", private_key=Ed25519PrivateKey.generate())
    context = EventContext(
        actor_id="rep-é",  # not ASCII: the payload escapes it, the envelope keeps it
        actor_org_id="s",
        subject_org_id="c",
        subject_user_id=None,
        acting_session_id="sess-1",
        policy_revision="r",
    )
    source = service_source("orders")
    signed = new_signed_event(
        source=source, type=ORDER.event_type, data=ORDER.data(), context=context, signing_key=key
    )
    received = decode(signed.payload)
    # What the consumers and the audit chain see: the same event, provably from orders.
    assert received.get_id() == signed.id
    assert received.get_type() == signed.type == ORDER.event_type
    assert event_data(received, OrderPlaced) == ORDER
    assert received.get_extension("actorid") == "rep-é"
    assert received.get_extension("subjectuserid") is None
    assert (
        emitter_of(
            json.loads(canonical_envelope(received)),
            {key.kid: key.public()},
            subject=nats_subject(ORDER.event_type),
        )
        == "orders"
    )
    # The SDK's own writing of the same attributes carries the same document.
    rewritten = json.loads(encode(received))
    assert rewritten == json.loads(signed.payload)
    # A byte changed in what was signed is refused.
    tampered = signed.payload.replace(b'"24.00"', b'"23.00"')
    with pytest.raises(SignatureProblem, match="does not match"):
        emitter_of(json.loads(canonical_envelope(decode(tampered))), {key.kid: key.public()})


def test_a_consumer_turns_data_that_breaks_the_contract_into_poison() -> None:
    bad = build_event(
        source=service_source("identity"),
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


def test_identity_projects_rights_from_events_of_either_type_form() -> None:
    """A v1 event (bare type, as still stored in the stream) and a current one raise the same
    standing: the projector dispatches on the contract, not on one spelling."""
    from libs.common.revocation import user_key
    from libs.contracts.identity import PasswordChanged
    from services.identity.handlers import _standing_entry

    changed = PasswordChanged(user_id="u-1", generation=3, active=True)
    entries = [
        _standing_entry(build_event(source=source, type=type, data=changed.data(), context=CONTEXT))
        for source, type in (
            (service_source("identity"), PasswordChanged.event_type),
            ("/onbehalf/identity", "identity.user.password_changed"),
        )
    ]
    assert entries[0] == entries[1] and entries[0] is not None
    assert entries[0][0] == user_key("u-1") and entries[0][1].generation == 3
