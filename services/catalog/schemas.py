"""Catalog's request and response bodies. Money is a decimal, serialised as a string."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

Sku = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
Price = Field(gt=Decimal(0), max_digits=12, decimal_places=2)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductCreate(Strict):
    sku: str = Sku
    name: str = Field(min_length=1, max_length=200)
    price: Decimal = Price
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")


class ProductRead(BaseModel):
    """A product as one customer sees it: `price` is what that customer pays."""

    sku: str
    name: str
    price: Decimal
    currency: str
    base_price: Decimal
    customer_price: bool


class ProductPage(BaseModel):
    items: list[ProductRead]


class CustomerPriceUpdate(Strict):
    price: Decimal = Price


class CustomerPriceRead(BaseModel):
    org_id: str
    sku: str
    price: Decimal
    currency: str


class AssortmentUpdate(Strict):
    skus: list[str] = Field(max_length=10_000)


class AssortmentRead(BaseModel):
    org_id: str
    skus: list[str]
