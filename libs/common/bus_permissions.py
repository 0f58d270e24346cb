"""Who may do what on the bus: one NATS user per service, least privilege, rendered into nats.conf."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from libs.common.activity import ACTIVITY_SUBJECT
from libs.common.bus import (
    CHECKPOINT_STREAM,
    CHECKPOINT_SUBJECT,
    DEADLETTER_STREAM,
    EVENTS_STREAM,
    inbox_prefix,
)
from libs.contracts.cart import CartCheckout, CartSnapshotRequest
from libs.contracts.catalog import PriceQuoteRequest

QUOTE_SUBJECT = PriceQuoteRequest.subject
# Orders asks cart, only cart hears: the snapshot before an order, the checkout after.
CART_REQUESTS = [CartSnapshotRequest.subject, CartCheckout.subject]

REVOCATION_STREAM = "KV_acting_revocations"  # the stream behind the `acting_revocations` bucket
REVOCATION_KV_SUBJECTS = "$KV.acting_revocations.>"

SERVICES = ("identity", "catalog", "cart", "orders", "audit")
# Not services: the launcher's stream provisioning, and an operator's read-only CLI.
PROVISIONER = "provisioner"
OPERATOR = "operator"
USERS = (*SERVICES, PROVISIONER, OPERATOR)


@dataclass(frozen=True)
class BusRights:
    """A user's grants; everything not listed is refused by nats-server."""

    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    # May answer the requests it receives (publish to their reply subject, once, briefly).
    answers_requests: bool = False


def _durable(stream: str, durable: str) -> list[str]:
    """Create/bind, fetch from and acknowledge one durable pull consumer, nothing else."""
    api = "$JS.API.CONSUMER"
    return [
        f"{api}.CREATE.{stream}.{durable}",
        f"{api}.CREATE.{stream}.{durable}.>",
        f"{api}.DURABLE.CREATE.{stream}.{durable}",
        f"{api}.INFO.{stream}.{durable}",
        f"{api}.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _reads_stream(stream: str) -> list[str]:
    """Read a whole stream through ephemeral consumers and direct gets (no admin rights).

    No CONSUMER.DELETE: consumer names are not secret, and a reader who could delete one could
    delete audit's durable. Ephemeral consumers go away by themselves when left inactive."""
    api = "$JS.API"
    return [
        f"{api}.STREAM.INFO.{stream}",
        f"{api}.CONSUMER.CREATE.{stream}",
        f"{api}.CONSUMER.CREATE.{stream}.>",
        f"{api}.CONSUMER.INFO.{stream}.>",
        f"{api}.CONSUMER.MSG.NEXT.{stream}.>",
        f"{api}.STREAM.MSG.GET.{stream}",
        f"{api}.DIRECT.GET.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


# Every service watches the revocation bucket and publishes only its own events and dead letters.
def _service_base(service: str) -> BusRights:
    return BusRights(
        publish=[
            f"events.{service}.>",
            f"deadletter.{service}.>",
            f"$JS.API.STREAM.INFO.{EVENTS_STREAM}",
            *_reads_stream(REVOCATION_STREAM),
        ],
        subscribe=[f"{inbox_prefix(service)}.>"],
    )


def _extend(
    base: BusRights, *, publish: list[str], subscribe: list[str], answers: bool
) -> BusRights:
    return BusRights(
        publish=[*base.publish, *publish],
        subscribe=[*base.subscribe, *subscribe],
        answers_requests=answers,
    )


# The durable consumers each service owns on the EVENTS stream.
DURABLES: dict[str, tuple[str, ...]] = {
    "identity": (
        "identity-revocations",
        "identity-standing",
        "identity-notices",
        "identity-approvals",
    ),
    "catalog": (),
    "cart": ("cart-checkout", "cart-lock-release"),
    "orders": (),
    "audit": ("audit",),
}


def rights(user: str, *, audit_durable: str = "audit") -> BusRights:
    """The grants of `user` (a service, the provisioner or the operator)."""
    if user == PROVISIONER:
        # Creates streams, the bucket and nothing else runs with it: the JetStream admin API.
        return BusRights(publish=["$JS.API.>"], subscribe=[f"{inbox_prefix(user)}.>"])
    if user == OPERATOR:
        # `onbehalf audit tail|verify`, `onbehalf deadletters`: read, never write or delete.
        return BusRights(
            publish=[
                *_reads_stream(EVENTS_STREAM),
                *_reads_stream(DEADLETTER_STREAM),
                *_reads_stream(CHECKPOINT_STREAM),
            ],
            subscribe=[f"{inbox_prefix(user)}.>"],
        )
    if user not in SERVICES:
        raise ValueError(f"no such bus user: {user}")
    durables = DURABLES[user] if user != "audit" else (audit_durable,)
    consumers = [grant for durable in durables for grant in _durable(EVENTS_STREAM, durable)]
    base = _service_base(user)
    if user == "identity":
        # The only writer of the revocation bucket; hears activity reports.
        return _extend(
            base,
            publish=[*consumers, REVOCATION_KV_SUBJECTS, ACTIVITY_SUBJECT],
            subscribe=[ACTIVITY_SUBJECT],
            answers=False,
        )
    if user == "catalog":
        # The only one who may hear (and so answer) price quotes.
        return _extend(base, publish=[ACTIVITY_SUBJECT], subscribe=[QUOTE_SUBJECT], answers=True)
    if user == "cart":
        return _extend(
            base,
            publish=[*consumers, QUOTE_SUBJECT, ACTIVITY_SUBJECT],
            subscribe=CART_REQUESTS,
            answers=True,
        )
    if user == "orders":
        return _extend(
            base,
            publish=[*consumers, *CART_REQUESTS, ACTIVITY_SUBJECT],
            subscribe=[],
            answers=False,
        )
    # audit: reads every event, signs checkpoints into their own stream and reads them back.
    return _extend(
        base,
        publish=[*consumers, CHECKPOINT_SUBJECT, *_reads_stream(CHECKPOINT_STREAM)],
        subscribe=[],
        answers=False,
    )


def render_server_config(
    public_nkeys: dict[str, str], *, audit_durable: str = "audit", extra: str = ""
) -> str:
    """nats-server configuration: one nkey user per entry of `public_nkeys`; nobody else gets in."""
    users = []
    for user, nkey in public_nkeys.items():
        grant = rights(user, audit_durable=audit_durable)
        permissions: dict[str, object] = {
            "publish": {"allow": grant.publish},
            "subscribe": {"allow": grant.subscribe},
        }
        if grant.answers_requests:
            permissions["allow_responses"] = {"max": 1, "expires": "5s"}
        # JSON is valid nats-server configuration syntax, and quotes every `$` subject safely.
        users.append({"nkey": nkey, "permissions": permissions})
    body = json.dumps({"users": users}, indent=2)
    header = "# Generated by `onbehalf nats init`; edit libs/common/bus_permissions.py instead.\n"
    return f"{header}authorization {body}\n{extra}"
