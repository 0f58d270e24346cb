"""How a customer's price is made: its own price or the base price, then the best promotion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
PERCENTAGE = "percentage"
FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Offer:
    """A promotion as pricing sees it; `skus` empty means every product."""

    id: str
    name: str
    kind: str
    value: Decimal
    currency: str | None
    valid_from: datetime
    valid_to: datetime | None
    skus: frozenset[str]

    def runs_at(self, now: datetime) -> bool:
        return self.valid_from <= now and (self.valid_to is None or now < self.valid_to)

    def covers(self, sku: str, currency: str) -> bool:
        # A fixed amount is money in one currency; it never discounts a price in another.
        if self.kind == FIXED and self.currency != currency:
            return False
        return not self.skus or sku in self.skus

    def price_after(self, price: Decimal) -> Decimal:
        """The price after this discount, rounded half up to the cent, never below zero."""
        if self.kind == PERCENTAGE:
            discount = (price * self.value / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            discount = self.value
        return max(Decimal(0), price - discount).quantize(CENT)


@dataclass(frozen=True, slots=True)
class Priced:
    """What one customer pays for one product, and why."""

    price: Decimal
    price_before_promotion: Decimal
    promotion: Offer | None


def best_offer(
    *, sku: str, price: Decimal, currency: str, offers: Iterable[Offer], now: datetime
) -> tuple[Offer, Decimal] | None:
    """The promotion that gives the lowest price now, with that price; None if none lowers it.

    Promotions never stack. On equal prices the one that runs longest wins (open-ended
    before any end date, then the latest end), then the smallest id, so the choice is stable.
    """
    candidates = [
        (offer.price_after(price), offer)
        for offer in offers
        if offer.runs_at(now) and offer.covers(sku, currency)
    ]
    candidates = [(after, offer) for after, offer in candidates if after < price]
    if not candidates:
        return None
    lowest = min(after for after, _ in candidates)
    tied = [offer for after, offer in candidates if after == lowest]
    open_ended = [offer for offer in tied if offer.valid_to is None]
    if open_ended:
        chosen = min(open_ended, key=lambda offer: offer.id)
    else:
        latest = max(offer.valid_to for offer in tied if offer.valid_to is not None)
        chosen = min((o for o in tied if o.valid_to == latest), key=lambda offer: offer.id)
    return chosen, lowest


def price_for(
    *,
    sku: str,
    base_price: Decimal,
    own_price: Decimal | None,
    currency: str,
    offers: Iterable[Offer],
    now: datetime,
) -> Priced:
    """The customer's own price where set, else the base price; then the best promotion."""
    before = own_price if own_price is not None else base_price
    best = best_offer(sku=sku, price=before, currency=currency, offers=offers, now=now)
    if best is None:
        return Priced(price=before, price_before_promotion=before, promotion=None)
    offer, after = best
    return Priced(price=after, price_before_promotion=before, promotion=offer)
