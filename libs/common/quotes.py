"""The price-quote contract over NATS request-reply: catalog answers, cart and orders ask."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel

from libs.common.errors import Unavailable

QUOTE_SUBJECT = "catalog.quote"


class QuoteRequest(BaseModel):
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


class Quote(BaseModel):
    """Prices for `org_id`; `unavailable` lists SKUs that do not exist or are not for it."""

    org_id: str
    lines: dict[str, QuotedLine]
    unavailable: list[str]
    # When the prices were taken: promotions start and end, so a quote is true at one moment.
    quoted_at: datetime | None = None


async def request_quote(nc: NATS, *, org_id: str, skus: list[str], timeout: float = 2.0) -> Quote:
    payload = QuoteRequest(org_id=org_id, skus=sorted(set(skus))).model_dump_json().encode()
    try:
        reply = await nc.request(QUOTE_SUBJECT, payload, timeout=timeout)
    except NoRespondersError as exc:
        raise Unavailable("the catalog is not answering price quotes") from exc
    except NatsTimeoutError as exc:
        raise Unavailable("the catalog did not answer the price quote in time") from exc
    body: dict[str, Any] = json.loads(reply.data)
    if "error" in body:
        raise Unavailable(f"the catalog refused the price quote: {body['error']}")
    return Quote.model_validate(body)
