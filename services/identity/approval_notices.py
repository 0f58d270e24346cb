"""Telling a customer's admins that an order waits for their approval: identity consumes
orders' `orders.budget.charged` events and, for each one in state `awaiting`, mails every
active admin of the organisation through the mail outbox, with a link to the console's
approval page. Orders does not know the admins' addresses; identity does."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.consumer import Delivery, PoisonMessage, checked_context, consume, event_data
from libs.common.events import EventContext
from libs.common.inbox import first_delivery
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.customers import ApprovalRequestSent
from libs.contracts.orders import BudgetCharged
from services.identity.mail_templates import fmt_time, send_mail
from services.identity.models import ActingSessionRecord, NoticeInbox, Organization, User
from services.identity.org_people import active_admins
from services.identity.parts import mail_committed
from services.identity.settings import identity_settings

AWAITING = "awaiting"


async def _placed_by(uow: UnitOfWork, context: EventContext) -> str:
    """Who placed the order, in the customer's words: the staff member "on behalf of" it."""
    if context.acting_session_id:
        record = await uow.session.get(ActingSessionRecord, context.acting_session_id)
        if record is not None:
            return f"{record.actor_name} (staff of the seller, on behalf of your organisation)"
    user = await uow.session.get(User, context.actor_id) if context.actor_id else None
    return user.name if user is not None else "someone"


async def ask_admins(
    uow: UnitOfWork,
    charged: BudgetCharged,
    context: EventContext,
    placed_at: datetime,
) -> int:
    """Stage one mail per active admin of the order's organisation; how many were staged."""
    org_id = context.subject_org_id
    org = await uow.session.get(Organization, org_id) if org_id else None
    if org is None or org.is_seller:
        return 0
    admins = await active_admins(uow.session, org.id)
    placed_by = await _placed_by(uow, context)
    console = identity_settings(uow.runtime).console_url.rstrip("/")
    for admin in admins:
        await send_mail(
            uow,
            to=admin.email,
            key="approval_request",
            values={
                "name": admin.name,
                "placed_by": placed_by,
                "org_name": org.name,
                "total": str(charged.amount),
                "currency": charged.currency,
                "placed_at": fmt_time(placed_at),
                "order_id": charged.order_id,
                "period_key": charged.period_key,
                "remaining": str(charged.remaining),
                "approvals_url": f"{console}/approvals",
                "approve_url": f"/v1/orders/{charged.order_id}/approve",
            },
        )
    if admins:
        uow.publish(
            ApprovalRequestSent(org_id=org.id, order_id=charged.order_id, recipients=len(admins)),
            context,
        )
    return len(admins)


async def ask_for_approvals(runtime: ServiceRuntime) -> None:
    """Consume `orders.budget.charged`; each awaiting order is told once (inbox by event id)."""

    async def handle(batch: list[Delivery]) -> None:
        staged = False
        for delivery in batch:
            charged = event_data(delivery.event, BudgetCharged)
            if charged.state != AWAITING:
                continue  # spent, returned, rejected: nothing to ask anyone
            context = checked_context(delivery.event, policy_revision=runtime.authorizer.revision)
            if context.subject_org_id is None:
                raise PoisonMessage("an awaiting budget charge names no customer organisation")
            placed_at = delivery.event.get_time() or datetime.now(UTC)
            async with runtime.unit_of_work() as uow:
                if not await first_delivery(
                    await uow.statements(), NoticeInbox, delivery.event.get_id()
                ):
                    continue
                staged = await ask_admins(uow, charged, context, placed_at) > 0 or staged
        if staged:
            mail_committed(runtime)

    await consume(
        runtime.js,
        service="identity",
        durable="identity-approvals",
        subject=BudgetCharged.subject(),
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )
