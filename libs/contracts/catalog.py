"""What catalog publishes and answers: product and price events, and price quotes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel

from libs.contracts.base import Event, Id, Message, Request

# ---------------------------------------------------------------- price quotes


class PriceQuoteRequest(Request):
    """Prices for `org_id` now; cart asks when a line changes, and when orders asks it for
    an order snapshot. Catalog is the one source of prices."""

    subject: ClassVar[str] = "catalog.quote"

    org_id: str
    skus: list[str]


class QuotedLine(BaseModel):
    """One product at the price the customer pays now: `unit_price` is the product list's
    `price` (own price or base price, then the best promotion)."""

    sku: str
    name: str
    unit_price: Decimal
    currency: str
    base_price: Decimal
    # Added with promotions; defaults keep older quotes readable.
    price_before_promotion: Decimal | None = None
    promotion_id: str | None = None
    promotion_name: str | None = None
    customer_product_number: str | None = None


class PriceQuote(Message):
    """Prices for `org_id`; `unavailable` lists SKUs that do not exist or are not for it."""

    org_id: str
    lines: dict[str, QuotedLine]
    unavailable: list[str]
    # When the prices were taken: promotions start and end, so a quote is true at one moment.
    quoted_at: datetime | None = None


class QuoteRefused(Message):
    """Catalog's answer to a request it cannot read."""

    error: str


# ---------------------------------------------------------------- events


class ProductCreated(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.product.created"

    sku: str
    name: str
    price: Decimal
    currency: str


class CustomerPriceSet(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.customer_price.set"

    org_id: Id
    sku: str
    price: Decimal
    currency: str


class CustomerPriceRemoved(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.customer_price.removed"

    org_id: Id
    sku: str
    previous: Decimal


class AssortmentSet(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.assortment.set"

    org_id: Id
    skus: list[str]


class CustomerGroupsSet(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.customer_groups.set"

    org_id: Id
    groups: list[str]


class PromotionCreated(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.promotion.created"

    id: Id
    name: str
    kind: Literal["percentage", "fixed"]
    value: Decimal
    currency: str | None
    valid_from: datetime
    valid_to: datetime | None
    ended_at: datetime | None
    status: Literal["scheduled", "active", "ended"]
    org_ids: list[str]
    groups: list[str]
    skus: list[str]
    created_at: datetime


class PromotionEnded(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.promotion.ended"

    id: Id
    name: str
    ended_at: datetime


class CustomerProductNumberSet(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.customer_product_number.set"

    org_id: Id
    sku: str
    number: str
    previous: str | None


class CustomerProductNumberRemoved(Event):
    event_type: ClassVar[str] = "com.onbehalf.catalog.customer_product_number.removed"

    org_id: Id
    sku: str
    previous: str | None
