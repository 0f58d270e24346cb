"""Cart's request and response bodies."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # Unknown fields, such as a price a client tries to set, are refused.
    model_config = ConfigDict(extra="forbid")


class CartItemCreate(Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, strict=True)


class CartItemUpdate(Strict):
    quantity: int = Field(gt=0, strict=True)


class CartItemRead(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str


class CartRead(BaseModel):
    id: str | None
    org_id: str
    items: list[CartItemRead]
    lock: None = None
    version: int
