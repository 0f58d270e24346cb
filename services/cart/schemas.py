"""Cart's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Strict(BaseModel):
    # Unknown fields, such as a price a client tries to set, are refused.
    model_config = ConfigDict(extra="forbid")


Sku = Annotated[str, Field(min_length=1, max_length=64)]
# The schema states the default `max_quantity`; a deployment may set it lower, never higher.
Quantity = Annotated[int, Field(gt=0, le=10_000, strict=True)]
ListName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CartItemCreate(Strict):
    sku: Sku
    quantity: Quantity


class CartItemUpdate(Strict):
    quantity: Quantity


class CartItemRead(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str


class LockHolderRead(BaseModel):
    id: str
    name: str


class CartLockRead(BaseModel):
    """Who holds the lock on the cart: the staff member and their acting session."""

    holder: LockHolderRead
    session_id: str
    since: datetime
    last_activity_at: datetime


class CartLockTakeover(Strict):
    # The holder the caller saw (GET /v1/cart → lock.session_id): if someone else holds the
    # lock by now, the take-over is refused with 409 naming them. The body itself is optional
    # (contract v1 takes over without one); a body that is sent must name the holder.
    holder_session_id: str = Field(min_length=1, max_length=64)


class CartRead(BaseModel):
    id: str | None
    org_id: str
    items: list[CartItemRead]
    lock: CartLockRead | None = None
    # Also the ETag; it never goes back, not even when a checked-out cart is replaced.
    version: int


class SavedListItemWrite(Strict):
    sku: Sku
    quantity: Quantity


class SavedListCreate(Strict):
    name: ListName
    items: list[SavedListItemWrite] = Field(default_factory=list, max_length=500)


class SavedListRename(Strict):
    name: ListName


class SavedListItemRead(BaseModel):
    sku: str
    name: str
    quantity: int


class PartyRead(BaseModel):
    id: str
    name: str


class SavedListRead(BaseModel):
    id: str
    org_id: str
    name: str
    items: list[SavedListItemRead]
    created_by: PartyRead
    created_at: datetime
    updated_at: datetime


class SavedListPage(BaseModel):
    items: list[SavedListRead]
