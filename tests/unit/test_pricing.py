"""Catalog's pricing rules, in process: own price, best promotion, rounding, ties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.catalog.pricing import Offer, price_for

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def offer(id: str, kind: str, value: str, *, until: datetime | None = None, **kw: object) -> Offer:
    return Offer(
        id=id,
        name=id,
        kind=kind,
        value=Decimal(value),
        currency=kw.get("currency", "EUR"),  # type: ignore[arg-type]
        valid_from=NOW - timedelta(days=1),
        valid_to=until,
        skus=frozenset(kw.get("skus", ())),  # type: ignore[call-overload]
    )


def test_own_price_beats_base_price_and_promotions_apply_to_it() -> None:
    priced = price_for(
        sku="A",
        base_price=Decimal("10.00"),
        own_price=Decimal("8.00"),
        currency="EUR",
        offers=[offer("p", "percentage", "12.5")],
        now=NOW,
    )
    assert priced.price_before_promotion == Decimal("8.00")
    assert priced.price == Decimal("7.00")


def test_promotions_never_stack_and_the_lowest_price_wins_then_the_longest_running() -> None:
    offers = [
        offer("b", "fixed", "2.00", until=NOW + timedelta(days=1)),
        offer("a", "percentage", "20"),
        offer("c", "fixed", "1.00"),
    ]
    priced = price_for(
        sku="A",
        base_price=Decimal("10.00"),
        own_price=None,
        currency="EUR",
        offers=offers,
        now=NOW,
    )
    assert priced.price == Decimal("8.00")
    assert priced.promotion is not None and priced.promotion.id == "a"


def test_a_fixed_amount_in_another_currency_or_for_other_skus_does_not_apply() -> None:
    offers = [offer("x", "fixed", "5", currency="USD"), offer("y", "fixed", "5", skus={"B"})]
    priced = price_for(
        sku="A",
        base_price=Decimal("10.00"),
        own_price=None,
        currency="EUR",
        offers=offers,
        now=NOW,
    )
    assert priced.price == Decimal("10.00") and priced.promotion is None


def test_a_discount_never_goes_below_zero() -> None:
    priced = price_for(
        sku="A",
        base_price=Decimal("3.00"),
        own_price=None,
        currency="EUR",
        offers=[offer("big", "fixed", "5.00")],
        now=NOW,
    )
    assert priced.price == Decimal("0.00")
