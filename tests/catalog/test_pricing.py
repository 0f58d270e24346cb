"""The price rule on its own: own or base price, then the best running promotion, never below zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.catalog.pricing import Offer, best_offer, price_for

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def offer(
    id: str,
    kind: str,
    value: str,
    *,
    currency: str | None = None,
    skus: tuple[str, ...] = (),
    valid_from: datetime = NOW - HOUR,
    valid_to: datetime | None = NOW + HOUR,
) -> Offer:
    return Offer(
        id=id,
        name=f"Promotion {id}",
        kind=kind,
        value=Decimal(value),
        currency=currency if kind == "fixed" else None,
        valid_from=valid_from,
        valid_to=valid_to,
        skus=frozenset(skus),
    )


def test_customer_price_before_base_price_then_the_promotion() -> None:
    ten_percent = offer("p", "percentage", "10")
    own = price_for(
        sku="A",
        base_price=Decimal("20.00"),
        own_price=Decimal("15.00"),
        currency="EUR",
        offers=[ten_percent],
        now=NOW,
    )
    assert (own.price, own.price_before_promotion, own.promotion) == (
        Decimal("13.50"),
        Decimal("15.00"),
        ten_percent,
    )
    base = price_for(
        sku="A", base_price=Decimal("20.00"), own_price=None, currency="EUR", offers=[], now=NOW
    )
    assert (base.price, base.price_before_promotion, base.promotion) == (
        Decimal("20.00"),
        Decimal("20.00"),
        None,
    )


def test_percentage_rounds_half_up_to_the_cent() -> None:
    # 10 % of 7.45 is 0.745: the discount is 0.75, the price 6.70.
    found = best_offer(
        sku="A",
        price=Decimal("7.45"),
        currency="EUR",
        offers=[offer("p", "percentage", "10")],
        now=NOW,
    )
    assert found is not None and found[1] == Decimal("6.70")


def test_never_below_zero() -> None:
    for promotion in (
        offer("f", "fixed", "50.00", currency="EUR"),
        offer("p", "percentage", "100"),
    ):
        found = best_offer(
            sku="A", price=Decimal("12.00"), currency="EUR", offers=[promotion], now=NOW
        )
        assert found == (promotion, Decimal("0.00"))


def test_nothing_to_discount_on_a_free_product() -> None:
    found = best_offer(
        sku="A",
        price=Decimal("0.00"),
        currency="EUR",
        offers=[offer("p", "percentage", "10")],
        now=NOW,
    )
    assert found is None


def test_a_fixed_amount_only_discounts_prices_in_its_currency() -> None:
    chf = offer("f", "fixed", "1.00", currency="CHF")
    assert best_offer(sku="A", price=Decimal("9.00"), currency="EUR", offers=[chf], now=NOW) is None
    assert best_offer(sku="A", price=Decimal("9.00"), currency="CHF", offers=[chf], now=NOW) == (
        chf,
        Decimal("8.00"),
    )


def test_limited_to_its_products() -> None:
    only_b = offer("p", "percentage", "10", skus=("B",))
    assert (
        best_offer(sku="A", price=Decimal("10"), currency="EUR", offers=[only_b], now=NOW) is None
    )
    assert best_offer(sku="B", price=Decimal("10"), currency="EUR", offers=[only_b], now=NOW)


def test_runs_from_valid_from_up_to_but_not_at_valid_to() -> None:
    window = offer("p", "percentage", "10", valid_from=NOW, valid_to=NOW + HOUR)

    def applies(when: datetime) -> bool:
        return bool(
            best_offer(sku="A", price=Decimal("10"), currency="EUR", offers=[window], now=when)
        )

    assert not applies(NOW - timedelta(microseconds=1))
    assert applies(NOW)
    assert applies(NOW + HOUR - timedelta(microseconds=1))
    assert not applies(NOW + HOUR)
    open_ended = offer("o", "percentage", "10", valid_from=NOW, valid_to=None)
    assert best_offer(
        sku="A", price=Decimal("10"), currency="EUR", offers=[open_ended], now=NOW + 1000 * HOUR
    )


def test_the_lowest_price_wins_and_promotions_never_stack() -> None:
    offers = [
        offer("small", "percentage", "5"),
        offer("big", "fixed", "3.00", currency="EUR"),
        offer("medium", "percentage", "20"),
    ]
    found = best_offer(sku="A", price=Decimal("10.00"), currency="EUR", offers=offers, now=NOW)
    assert found is not None
    assert (found[0].id, found[1]) == ("big", Decimal("7.00"))


def test_ties_go_to_the_longest_running_then_the_smallest_id() -> None:
    later = offer("z-later", "fixed", "1.00", currency="EUR", valid_to=NOW + 5 * HOUR)
    sooner = offer("a-sooner", "percentage", "10", valid_to=NOW + HOUR)
    open_b = offer("b-open", "percentage", "10", valid_to=None)
    open_c = offer("c-open", "fixed", "1.00", currency="EUR", valid_to=None)

    def winner(*offers: Offer) -> str:
        found = best_offer(sku="A", price=Decimal("10.00"), currency="EUR", offers=offers, now=NOW)
        assert found is not None and found[1] == Decimal("9.00")
        return found[0].id

    assert winner(sooner, later) == "z-later"
    assert winner(later, sooner, open_c, open_b) == "b-open"
    twin = offer("a-twin", "fixed", "1.00", currency="EUR", valid_to=NOW + 5 * HOUR)
    assert winner(later, twin) == "a-twin"
