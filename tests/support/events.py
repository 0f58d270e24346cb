"""An event as a service stages it, for the tests of the outbox and its relays."""

from __future__ import annotations

from cloudevents.core.v1.event import CloudEvent

from libs.common.events import EventContext, build_event

STAFF_CONTEXT = EventContext(
    actor_id="staff-1",
    actor_org_id="seller",
    subject_org_id="customer-1",
    subject_user_id=None,
    acting_session_id=None,
    policy_revision="test",
)


def product_created(sku: str) -> CloudEvent:
    """catalog's `product.created` for `sku`, unsigned, acted by a staff member."""
    return build_event(
        source="/onbehalf/catalog",
        type="com.onbehalf.catalog.product.created",
        data={"sku": sku},
        context=STAFF_CONTEXT,
    )
