"""Orders' request and response bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class OrderCreate(BaseModel):
    # No prices, no items: an order is made of the cart at the catalog's prices.
    model_config = ConfigDict(extra="forbid")

    purchase_order_number: str | None = Field(default=None, max_length=64)


class PartyRead(BaseModel):
    id: str
    name: str


class OrderLineRead(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class OrderCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class CancellationRead(BaseModel):
    cancelled_by: PartyRead
    acting_session_id: str | None
    # True where a staff member cancelled it while acting: "cancelled on your behalf by <name>".
    cancelled_on_behalf: bool
    reason: str | None
    cancelled_at: datetime


class OrderRead(BaseModel):
    id: str
    customer_org_id: str
    placed_by: PartyRead
    acting_session_id: str | None
    # True where a staff member placed it while acting: "placed on your behalf by <name>".
    placed_on_behalf: bool
    items: list[OrderLineRead]
    total: Decimal
    currency: str
    status: str
    purchase_order_number: str | None
    created_at: datetime
    cancellation: CancellationRead | None = None


# Page sizes of the order history (`?limit=`): the default and the most one page holds.
ORDERS_PAGE_DEFAULT = 50
ORDERS_PAGE_MAX = 200


class OrderPage(BaseModel):
    items: list[OrderRead]
    # The `cursor` of the next page; null on the last one.
    next_cursor: str | None = None


# Every status an order can have (service.py, budgets.py): `GET /v1/orders?status=`.
OrderStatus = Literal["placed", "awaiting_approval", "rejected", "cancelled"]


class BudgetWrite(BaseModel):
    """A budget per employee (`user_id`) or per cost center (`name` and `member_ids`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["employee", "cost_center"]
    user_id: str | None = Field(default=None, min_length=1, max_length=36)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    member_ids: list[Annotated[str, Field(min_length=1, max_length=36)]] = Field(
        default_factory=list, max_length=500
    )
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    period: Literal["month", "quarter", "year"]
    on_exceed: Literal["refuse", "approval"]
    for_assisted_orders: StrictBool = False  # never 0/1: the same JSON boolean as the contract


class BudgetRead(BaseModel):
    id: str
    org_id: str
    kind: str
    user_id: str | None
    name: str
    member_ids: list[str]
    amount: Decimal
    currency: str
    period: str
    on_exceed: str
    for_assisted_orders: bool
    # The current period: its key (2026-12, 2026-Q4, 2026), what was spent, what is left.
    period_key: str
    spent: Decimal
    remaining: Decimal


class BudgetPage(BaseModel):
    items: list[BudgetRead]


class OwnBudgetRead(BaseModel):
    """The budget the caller's own orders count against, as far as it concerns them: no
    members, nothing of the organisation's other budgets."""

    id: str
    kind: str
    name: str
    amount: Decimal
    currency: str
    period: str
    on_exceed: str
    period_key: str
    spent: Decimal
    remaining: Decimal


class OwnBudget(BaseModel):
    # None: no budget holds the caller's orders, so none limits them.
    budget: OwnBudgetRead | None
