"""Catalog's request and response bodies. Money is a decimal, serialised as a string."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Sku = Field(min_length=1, max_length=64, pattern=SKU_PATTERN)
Price = Field(gt=Decimal(0), max_digits=12, decimal_places=2)
Currency = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")

SkuText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SKU_PATTERN)]
# Customer groups are names an admin makes up ("key-accounts", "dach.wholesale").
GroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
OrgId = Annotated[str, StringConstraints(min_length=1, max_length=36)]
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _without_control_characters(value: object) -> object:
    """Before trimming: a tab or carriage return at either end is refused as the documented
    pattern says, not trimmed away (trimming would accept what the OpenAPI refuses)."""
    if isinstance(value, str) and _CONTROL_CHARACTER.search(value):
        raise ValueError("must not contain control characters (tabs, line breaks...)")
    return value


# A customer's own product number: whatever its ERP uses, but printable and trimmed of spaces.
ProductNumber = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
    BeforeValidator(_without_control_characters),
]
PromotionKind = Literal["percentage", "fixed"]
PromotionStatus = Literal["scheduled", "active", "ended"]


class Strict(BaseModel):
    # Unknown fields are refused: a client cannot slip in something we would ignore.
    model_config = ConfigDict(extra="forbid")


class ProductCreate(Strict):
    sku: str = Sku
    name: str = Field(min_length=1, max_length=200)
    price: Decimal = Price
    currency: str = Currency


class AppliedPromotion(BaseModel):
    """The promotion behind a product's price, as the product list shows it."""

    id: str
    name: str
    kind: PromotionKind
    value: Decimal
    currency: str | None
    valid_to: datetime | None


class ProductRead(BaseModel):
    """A product as one customer sees it: `price` is what that customer pays now."""

    sku: str
    name: str
    price: Decimal
    currency: str
    base_price: Decimal
    customer_price: bool
    # The customer's own price, or the base price, before any promotion.
    price_before_promotion: Decimal
    promotion: AppliedPromotion | None = None
    customer_product_number: str | None = None


# Page sizes (`?limit=`): the default and the most one page holds.
PRODUCTS_PAGE_DEFAULT = 100
PRODUCTS_PAGE_MAX = 500
PROMOTIONS_PAGE_DEFAULT = 100
PROMOTIONS_PAGE_MAX = 500


class ProductPage(BaseModel):
    items: list[ProductRead]
    # The `cursor` of the next page; null on the last one.
    next_cursor: str | None = None


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


class CustomerGroupsUpdate(Strict):
    groups: list[GroupName] = Field(max_length=100)


class CustomerGroupsRead(BaseModel):
    org_id: str
    groups: list[str]


class PromotionCreate(Strict):
    """A promotion for the listed organisations and groups, on the listed products (all
    products when `skus` is empty), from `valid_from` (now when left out) to `valid_to`
    (until ended when left out)."""

    name: str = Field(min_length=1, max_length=200)
    kind: PromotionKind
    value: Decimal = Field(gt=Decimal(0), max_digits=12, decimal_places=2)
    currency: str | None = Field(default=None, min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    org_ids: list[OrgId] = Field(default_factory=list, max_length=1000)
    groups: list[GroupName] = Field(default_factory=list, max_length=100)
    skus: list[SkuText] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _consistent(self) -> PromotionCreate:
        if self.kind == "percentage":
            if self.value > 100:
                raise ValueError("a percentage discount is at most 100")
            if self.currency is not None:
                raise ValueError("a percentage discount has no currency")
        elif self.currency is None:
            raise ValueError("a fixed discount needs the currency of its amount")
        if not self.org_ids and not self.groups:
            raise ValueError("a promotion needs at least one target in org_ids or groups")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class PromotionRead(BaseModel):
    id: str
    name: str
    kind: PromotionKind
    value: Decimal
    currency: str | None
    valid_from: datetime
    valid_to: datetime | None
    ended_at: datetime | None
    status: PromotionStatus
    org_ids: list[str]
    groups: list[str]
    skus: list[str]
    created_at: datetime


class PromotionPage(BaseModel):
    items: list[PromotionRead]
    # The `cursor` of the next page; null on the last one.
    next_cursor: str | None = None


class ProductNumberUpdate(Strict):
    number: ProductNumber


class ProductNumberRead(BaseModel):
    org_id: str
    sku: str
    number: str
