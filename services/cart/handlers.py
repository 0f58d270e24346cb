"""What cart consumes: placed orders, which empty the cart they came from."""

from __future__ import annotations

from libs.common.consumer import Delivery, consume
from libs.common.events import context_of_event
from libs.common.inbox import first_delivery
from libs.common.runtime import ServiceRuntime
from services.cart import service
from services.cart.models import InboxEntry

ORDER_PLACED_SUBJECT = "events.orders.order.placed"


async def check_out_ordered_carts(runtime: ServiceRuntime) -> None:
    async def handle(batch: list[Delivery]) -> None:
        async with runtime.unit_of_work() as uow:
            for delivery in batch:
                event = delivery.event
                if not await first_delivery(uow.session, InboxEntry, event.get_id()):
                    continue
                data = event.get_data()
                if isinstance(data, dict):
                    context = context_of_event(event, policy_revision=runtime.authorizer.revision)
                    await service.check_out(uow=uow, context=context, order=data)

    await consume(runtime.js, durable="cart-checkout", subject=ORDER_PLACED_SUBJECT, handle=handle)
