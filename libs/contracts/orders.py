"""What orders publishes."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, Field

from libs.contracts.base import Event, Id


class Party(BaseModel):
    """Whoever pressed the button: the staff member when acting."""

    id: str
    name: str


class OrderedLine(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1)
    unit_price: Decimal


class OrderPlaced(Event):
    """An order was placed from cart `cart_id` as it was at `cart_version`; cart checks that
    cart out on this event (and on orders' direct request), once per `order_id`."""

    event_type: ClassVar[str] = "orders.order.placed"

    order_id: Id
    cart_id: Id
    cart_version: int
    total: Decimal
    currency: str
    placed_by: Party
    items: list[OrderedLine] = Field(default_factory=list)


class OrderCancelled(Event):
    event_type: ClassVar[str] = "orders.order.cancelled"

    order_id: Id
    previous_status: str
    status: str
    reason: str | None
    total: Decimal
    currency: str
    placed_by: Party
    placed_in_acting_session: str | None
    cancelled_by: Party
