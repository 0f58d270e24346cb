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

    event_type: ClassVar[str] = "com.onbehalf.orders.order.placed"

    order_id: Id
    cart_id: Id
    cart_version: int
    total: Decimal
    currency: str
    placed_by: Party
    items: list[OrderedLine] = Field(default_factory=list)


class OrderCancelled(Event):
    event_type: ClassVar[str] = "com.onbehalf.orders.order.cancelled"

    order_id: Id
    previous_status: str
    status: str
    reason: str | None
    total: Decimal
    currency: str
    placed_by: Party
    placed_in_acting_session: str | None
    cancelled_by: Party


class BudgetSet(Event):
    """A customer admin created or changed a budget (`created` says which)."""

    event_type: ClassVar[str] = "com.onbehalf.orders.budget.set"

    budget_id: Id
    created: bool
    kind: str
    name: str
    user_id: str | None
    member_ids: list[str] = Field(default_factory=list)
    amount: Decimal
    currency: str
    period: str
    on_exceed: str
    for_assisted_orders: bool


class BudgetDeleted(Event):
    event_type: ClassVar[str] = "com.onbehalf.orders.budget.deleted"

    budget_id: Id
    name: str


class BudgetCharged(Event):
    """An order counted against a budget: `state` spent, awaiting (approval) or returned (the
    order was cancelled or rejected); `spent` is the period's total after it."""

    event_type: ClassVar[str] = "com.onbehalf.orders.budget.charged"

    budget_id: Id
    order_id: Id
    period_key: str
    amount: Decimal
    currency: str
    state: str
    spent: Decimal
    remaining: Decimal


class OrderDecided(Event):
    """A customer admin approved or rejected an order that exceeded a budget."""

    event_type: ClassVar[str] = "com.onbehalf.orders.order.decided"

    order_id: Id
    budget_id: str | None
    decision: str
    status: str
    total: Decimal
    currency: str
    placed_by: Party
