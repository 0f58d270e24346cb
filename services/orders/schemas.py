"""Orders' request and response bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


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


class OrderPage(BaseModel):
    items: list[OrderRead]
