"""The one event envelope: CloudEvents 1.0 in JSON, with actor, subject, session and policy revision."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from libs.common.principals import Principal, actor_ref, subject_ref
from libs.common.signing import EventSigningKey, sign_attributes, signed_envelope
from libs.common.tracing import current_traceparent
from libs.contracts.base import event_name

# CloudEvents extension attribute names: lower-case letters and digits only.
EXTENSIONS = (
    "actorid",
    "actororgid",
    "subjectorgid",
    "subjectuserid",
    "actingsessionid",
    "policyrevision",
    # W3C Trace Context (CloudEvents Distributed Tracing extension): the span that wrote the
    # event, present only while tracing is on; signed and chained like every other attribute.
    "traceparent",
)

_FORMAT = JSONFormat()
SPECVERSION = "1.0"

# CloudEvents `source`: an absolute URI naming the emitting service (urn:onbehalf:service:cart).
# v1 envelopes, stored before it, carry the relative `/onbehalf/<service>`.
SOURCE_URN_PREFIX = "urn:onbehalf:service:"
LEGACY_SOURCE_PREFIX = "/onbehalf/"


def service_source(service: str) -> str:
    """The `source` of every event `service` emits."""
    return SOURCE_URN_PREFIX + service


@dataclass(frozen=True, slots=True)
class EventContext:
    """Who did it (actor), for whom (subject), in which acting session, under which policy."""

    actor_id: str | None
    actor_org_id: str | None
    subject_org_id: str | None
    subject_user_id: str | None
    acting_session_id: str | None
    policy_revision: str

    @classmethod
    def of(
        cls,
        principal: Principal,
        *,
        policy_revision: str,
        subject_org_id: str | None = None,
    ) -> EventContext:
        """The context of a request; `subject_org_id` names the customer when staff act on one."""
        actor_id, actor_org_id = actor_ref(principal)
        own_subject_org, subject_user_id = subject_ref(principal)
        return cls(
            actor_id=actor_id,
            actor_org_id=actor_org_id,
            subject_org_id=subject_org_id or own_subject_org,
            subject_user_id=subject_user_id,
            acting_session_id=principal.id if principal.kind == "acting" else None,
            policy_revision=policy_revision,
        )


def context_of_event(event: CloudEvent, *, policy_revision: str) -> EventContext:
    """The actor and subject of `event`, for the events a handler publishes because of it."""
    return EventContext(
        actor_id=event.get_extension("actorid"),
        actor_org_id=event.get_extension("actororgid"),
        subject_org_id=event.get_extension("subjectorgid"),
        subject_user_id=event.get_extension("subjectuserid"),
        acting_session_id=event.get_extension("actingsessionid"),
        policy_revision=policy_revision,
    )


def _attributes(source: str, type: str, context: EventContext) -> dict[str, Any]:
    """A new event's attributes (those that are set), specversion as the SDK would add it."""
    attributes: dict[str, Any] = {
        "id": str(uuid4()),
        "source": source,
        "type": type,
        "time": datetime.now(UTC),
        "datacontenttype": "application/json",
        "actorid": context.actor_id,
        "actororgid": context.actor_org_id,
        "subjectorgid": context.subject_org_id,
        "subjectuserid": context.subject_user_id,
        "actingsessionid": context.acting_session_id,
        "policyrevision": context.policy_revision,
        # Added before signing, so the signature and the audit chain cover it too.
        "traceparent": current_traceparent(),
    }
    present = {k: v for k, v in attributes.items() if v is not None}
    present["specversion"] = SPECVERSION
    return present


def build_event(
    *,
    source: str,
    type: str,
    data: dict[str, Any],
    context: EventContext,
    signing_key: EventSigningKey | None = None,
) -> CloudEvent:
    """A new event; signed with `signing_key` (every event a service emits is: see signing)."""
    attributes = _attributes(source, type, context)
    if signing_key is not None:
        sign_attributes(attributes, data, signing_key)
    return CloudEvent(attributes, data)


@dataclass(frozen=True, slots=True)
class SignedEvent:
    """A new event as the outbox keeps it: written once in the CloudEvents JSON format,
    signed, never parsed back on its way out."""

    id: str
    type: str
    traceparent: str | None
    payload: bytes

    @classmethod
    def of(cls, event: CloudEvent) -> SignedEvent:
        return cls(
            id=event.get_id(),
            type=event.get_type(),
            traceparent=event.get_extension("traceparent"),
            payload=encode(event),
        )


def new_signed_event(
    *,
    source: str,
    type: str,
    data: dict[str, Any],
    context: EventContext,
    signing_key: EventSigningKey,
) -> SignedEvent:
    """What `build_event` then `encode` give, without the SDK's object in between: the
    signed envelope (times already as `iso_utc` writes them, which the SDK reads back to
    the same instant) is the JSON document itself. A service's every event goes this way."""
    attributes = _attributes(source, type, context)
    envelope = signed_envelope(attributes, data, signing_key)
    return SignedEvent(
        id=attributes["id"],
        type=type,
        traceparent=attributes.get("traceparent"),
        payload=json.dumps(envelope).encode(),
    )


def nats_subject(event_type: str) -> str:
    """`com.onbehalf.cart.item.added` (or the v1 `cart.item.added`) is published on
    `events.cart.item.added`: subjects stay short, so the per-service NATS permissions
    (`events.<service>.>`) hold for either form."""
    return f"events.{event_name(event_type)}"


def encode(event: CloudEvent) -> bytes:
    return _FORMAT.write(event)


# RFC 3339 date-times (what `iso_utc` writes, and what other CloudEvents writers do), which
# Python's `fromisoformat` reads to the same instant, offset and microseconds as dateutil's
# `isoparse` (tests/unit/test_event_decoding.py); other ISO 8601 forms go the SDK's way.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


def decode(payload: bytes) -> CloudEvent:
    """The event in `payload` (CloudEvents JSON). The SDK's reader parses `time` with
    dateutil's pure-Python `isoparse` (≈ 5 % of the audit service's CPU, profiled): an
    ordinary 1.0 envelope with a time Python's own `fromisoformat` reads (every time our
    services write) is built here, the same attributes and data the SDK would give; anything
    else goes to the SDK's reader, which accepts or refuses it as it always did."""
    common = _decoded_common(payload)
    if common is not None:
        return common
    event = _FORMAT.read(CloudEvent, payload)
    assert isinstance(event, CloudEvent)
    return event


def _decoded_common(payload: bytes) -> CloudEvent | None:
    try:
        attributes = json.loads(payload.decode("utf-8"))
    except ValueError:
        return None  # the SDK's reader raises on it as before
    if not isinstance(attributes, dict) or attributes.get("specversion") != SPECVERSION:
        return None
    moment = attributes.get("time")
    if moment is not None:
        if not isinstance(moment, str) or _RFC3339.fullmatch(moment) is None:
            return None
        try:
            attributes["time"] = datetime.fromisoformat(moment)
        except ValueError:  # a 30th of February: the SDK's reader refuses it as it did
            return None
    elif "time" in attributes:
        return None
    data = attributes.pop("data", None)
    if data is None:
        encoded = attributes.pop("data_base64", None)
        if encoded is not None:
            return None  # binary data: rare, and the SDK's base64 rules apply
    return CloudEvent(attributes, data)
