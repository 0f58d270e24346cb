"""Products as a customer sees them: the visible products at its prices, price quotes for
cart and orders (the one source of prices), and its own product numbers."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Integer, Select, String, Table, and_, bindparam, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.errors import Conflict, NotFound
from libs.common.paging import decode_cursor, page_of
from libs.common.principals import Principal, org_in_view
from libs.common.resources import Catalog, CustomerProductNumbers
from libs.common.runtime import ServiceRuntime
from libs.contracts.catalog import PriceQuote, QuotedLine
from services.catalog import events, revision
from services.catalog.models import (
    TARGET_GROUP,
    TARGET_ORG,
    AssortmentItem,
    CustomerGroupMember,
    CustomerPrice,
    CustomerProductNumber,
    Product,
    Promotion,
    PromotionProduct,
    PromotionTarget,
)
from services.catalog.pricing import Offer, Priced, price_for
from services.catalog.schemas import (
    PRODUCTS_PAGE_DEFAULT,
    AppliedPromotion,
    ProductNumberRead,
    ProductPage,
    ProductRead,
    PromotionKind,
)
from services.catalog.views import CatalogParts, catalog_parts

# Tables, not mapped classes: these statements are built once, run as Core (no ORM compile or
# entity loading), and bound per call.
_products = cast(Table, Product.__table__)
_own_prices = cast(Table, CustomerPrice.__table__)
_numbers = cast(Table, CustomerProductNumber.__table__)
_assortment = cast(Table, AssortmentItem.__table__)
_promotions = cast(Table, Promotion.__table__)
_promoted = cast(Table, PromotionProduct.__table__)
_targets = cast(Table, PromotionTarget.__table__)
_members = cast(Table, CustomerGroupMember.__table__)

# The promotions for `org_id`, directly or through one of its groups, that run now or will:
# which of them run is decided at pricing time, so the list holds until the catalog changes.
_OFFERS = (
    select(
        _promotions.c.id,
        _promotions.c.name,
        _promotions.c.kind,
        _promotions.c.value,
        _promotions.c.currency,
        _promotions.c.valid_from,
        _promotions.c.valid_to,
        _promoted.c.sku,
    )
    .select_from(_promotions.outerjoin(_promoted, _promoted.c.promotion_id == _promotions.c.id))
    .where(
        _promotions.c.ended_at.is_(None),
        or_(_promotions.c.valid_to.is_(None), _promotions.c.valid_to > bindparam("now")),
        _promotions.c.id.in_(
            select(_targets.c.promotion_id).where(
                or_(
                    and_(_targets.c.kind == TARGET_ORG, _targets.c.ref == bindparam("org_id")),
                    and_(
                        _targets.c.kind == TARGET_GROUP,
                        _targets.c.ref.in_(
                            select(_members.c.group).where(_members.c.org_id == bindparam("org_id"))
                        ),
                    ),
                )
            )
        ),
    )
    .order_by(_promotions.c.id, _promoted.c.sku)
)


@functools.cache
def _visible_query(*, by_skus: bool, search: bool, after: bool, limited: bool) -> Select[Any]:
    """The products `:org_id` may buy with its own price and number: its assortment, or
    everything when it has none assigned; one statement per shape, built once."""
    query = (
        select(
            _products.c.sku,
            _products.c.name,
            _products.c.price,
            _products.c.currency,
            _own_prices.c.price,
            _numbers.c.number,
        )
        .select_from(
            _products.outerjoin(
                _own_prices,
                and_(
                    _own_prices.c.sku == _products.c.sku,
                    _own_prices.c.org_id == bindparam("org_id"),
                ),
            ).outerjoin(
                _numbers,
                and_(_numbers.c.sku == _products.c.sku, _numbers.c.org_id == bindparam("org_id")),
            )
        )
        .where(
            or_(
                ~exists().where(_assortment.c.org_id == bindparam("org_id")),
                exists().where(
                    _assortment.c.org_id == bindparam("org_id"),
                    _assortment.c.sku == _products.c.sku,
                ),
            )
        )
        .order_by(_products.c.sku)
    )
    if by_skus:
        query = query.where(_products.c.sku.in_(bindparam("skus", expanding=True)))
    if search:
        pattern = bindparam("pattern", type_=String)
        query = query.where(
            or_(
                func.lower(_products.c.sku).like(pattern, escape="/"),
                func.lower(_products.c.name).like(pattern, escape="/"),
                func.lower(_numbers.c.number).like(pattern, escape="/"),
            )
        )
    if after:
        query = query.where(_products.c.sku > bindparam("after_sku"))
    if limited:
        query = query.limit(bindparam("limit", type_=Integer))
    return query


def _containing(needle: str) -> str:
    """A LIKE pattern for `needle` anywhere: a "%" or "_" the customer types is a character."""
    escaped = needle.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _offers_of(rows: Sequence[Any]) -> tuple[Offer, ...]:
    offers = []
    for _, group in itertools.groupby(rows, key=lambda row: row[0]):
        found = list(group)
        id_, name, kind, value, currency, valid_from, valid_to, _ = found[0]
        offers.append(
            Offer(
                id=id_,
                name=name,
                kind=kind,
                value=value,
                currency=currency,
                valid_from=valid_from,
                valid_to=valid_to,
                skus=frozenset(row[7] for row in found if row[7] is not None),
            )
        )
    return tuple(offers)


def _next_change(offers: Iterable[Offer], now: datetime) -> datetime | None:
    """The first moment after `now` at which one of `offers` starts or ends."""
    moments = [
        moment
        for offer in offers
        for moment in (offer.valid_from, offer.valid_to)
        if moment is not None and moment > now
    ]
    return min(moments, default=None)


@dataclass(frozen=True, slots=True)
class _Seen:
    """One product as one customer sees it now, before it becomes a list item or a quote."""

    sku: str
    name: str
    currency: str
    base_price: Decimal
    own_price: Decimal | None
    number: str | None
    priced: Priced


async def _visible(
    session: AsyncSession,
    parts: CatalogParts,
    *,
    org_id: str,
    seen: int,
    now: datetime,
    skus: list[str] | None = None,
    needle: str = "",
    after_sku: str | None = None,
    limit: int | None = None,
) -> tuple[list[_Seen], datetime | None]:
    """The products `org_id` may buy, at its prices: its own price where set and the base
    price otherwise, then the best running promotion; with its own product numbers. `needle`
    (lower case) matches SKU, name or number. Also the moment the prices stop holding."""
    params: dict[str, Any] = {"org_id": org_id}
    if skus is not None:
        params["skus"] = skus
    if needle:
        params["pattern"] = _containing(needle)
    if after_sku is not None:
        params["after_sku"] = after_sku
    if limit is not None:
        params["limit"] = limit
    query = _visible_query(
        by_skus=skus is not None,
        search=bool(needle),
        after=after_sku is not None,
        limited=limit is not None,
    )
    rows = (await session.execute(query, params)).all()
    cached = parts.offers.get(org_id, revision=seen, now=now)
    if cached is not None:
        offers = cached.value
    else:
        offers = _offers_of((await session.execute(_OFFERS, {"org_id": org_id, "now": now})).all())
        parts.offers.put(org_id, offers, revision=seen, until=None)
    found = [
        _Seen(
            sku=sku,
            name=name,
            currency=currency,
            base_price=base_price,
            own_price=own_price,
            number=number,
            priced=price_for(
                sku=sku,
                base_price=base_price,
                own_price=own_price,
                currency=currency,
                offers=offers,
                now=now,
            ),
        )
        for sku, name, base_price, currency, own_price, number in rows
    ]
    return found, _next_change(offers, now)


def _product_read(seen: _Seen) -> ProductRead:
    offer = seen.priced.promotion
    return ProductRead.model_construct(
        sku=seen.sku,
        name=seen.name,
        price=seen.priced.price,
        currency=seen.currency,
        base_price=seen.base_price,
        customer_price=seen.own_price is not None,
        price_before_promotion=seen.priced.price_before_promotion,
        promotion=None
        if offer is None
        else AppliedPromotion.model_construct(
            id=offer.id,
            name=offer.name,
            kind=cast(PromotionKind, offer.kind),
            value=offer.value,
            currency=offer.currency,
            valid_to=offer.valid_to,
        ),
        customer_product_number=seen.number,
    )


def _quoted_line(seen: _Seen) -> QuotedLine:
    offer = seen.priced.promotion
    return QuotedLine(
        sku=seen.sku,
        name=seen.name,
        unit_price=seen.priced.price,
        currency=seen.currency,
        base_price=seen.base_price,
        price_before_promotion=seen.priced.price_before_promotion,
        promotion_id=offer.id if offer else None,
        promotion_name=offer.name if offer else None,
        customer_product_number=seen.number,
    )


async def list_products(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    q: str | None,
    limit: int = PRODUCTS_PAGE_DEFAULT,
    cursor: str | None = None,
) -> bytes:
    """A page of the products in view, by SKU, as the JSON of a ProductPage; `cursor` is the
    previous page's `next_cursor`. Cached (views.py): the same page costs one tiny query
    until the catalog changes or a promotion starts or ends."""
    org_id = org_in_view(principal)
    (after_sku,) = decode_cursor(cursor, parts=1) if cursor else (None,)
    runtime.authorizer.authorize(principal, "read", Catalog(org_id=org_id))
    parts = catalog_parts(runtime)
    needle = (q or "").strip().lower()
    key = (org_id, needle, after_sku, limit)
    cached = parts.pages.get(key, revision=await parts.revision.current(), now=utcnow())
    if cached is not None:
        return cached.value
    async with runtime.reading() as session:
        # Read again with the products, in one snapshot: the entry is stored under the
        # revision its prices belong to.
        seen = await revision.current(session)
        now = utcnow()
        found, until = await _visible(
            session,
            parts,
            org_id=org_id,
            seen=seen,
            now=now,
            needle=needle,
            after_sku=after_sku,
            limit=limit + 1,
        )
    items, next_cursor = page_of(found, limit=limit, key=lambda p: (p.sku,))
    page = ProductPage.model_construct(
        items=[_product_read(item) for item in items], next_cursor=next_cursor
    )
    body = page.model_dump_json().encode()
    parts.pages.put(key, body, revision=seen, until=until)
    return body


async def quote(*, runtime: ServiceRuntime, org_id: str, skus: list[str]) -> PriceQuote:
    """The one source of prices for cart and orders: the same numbers as the product list.
    Each product's line is cached like the list's pages."""
    parts = catalog_parts(runtime)
    wanted = list(dict.fromkeys(skus))
    lines: dict[str, QuotedLine] = {}
    seen = await parts.revision.current()
    now = utcnow()
    for sku in wanted:
        cached = parts.lines.get((org_id, sku), revision=seen, now=now)
        if cached is None:
            break
        if cached.value is not None:
            lines[sku] = cached.value
    else:
        wanted = []
    if wanted:
        # One missing line: all of them again, in one snapshot, so the quote is of one moment.
        lines = {}
        async with runtime.reading() as session:
            seen = await revision.current(session)
            now = utcnow()
            found, until = await _visible(
                session, parts, org_id=org_id, seen=seen, now=now, skus=wanted
            )
        fresh = {item.sku: _quoted_line(item) for item in found}
        for sku in wanted:
            line = fresh.get(sku)
            parts.lines.put((org_id, sku), line, revision=seen, until=until)
            if line is not None:
                lines[sku] = line
    return PriceQuote(
        org_id=org_id,
        lines={sku: lines[sku] for sku in sorted(lines)},
        unavailable=sorted(s for s in set(skus) if s not in lines),
        quoted_at=now,
    )


# ---------------------------------------------------------------- customer product numbers


async def _has_assortment(session: AsyncSession, org_id: str) -> bool:
    count = await session.scalar(
        select(func.count()).select_from(AssortmentItem).where(AssortmentItem.org_id == org_id)
    )
    return bool(count)


async def _in_catalog(session: AsyncSession, *, org_id: str, sku: str) -> bool:
    if await session.get(Product, sku) is None:
        return False
    if not await _has_assortment(session, org_id):
        return True
    return await session.get(AssortmentItem, (org_id, sku)) is not None


async def set_product_number(
    *, runtime: ServiceRuntime, principal: Principal, sku: str, number: str
) -> ProductNumberRead:
    """The caller's organisation (or the acting subject) calls product `sku` `number`."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "edit", CustomerProductNumbers(org_id=org_id))
    read = ProductNumberRead(org_id=org_id, sku=sku, number=number)
    try:
        async with revision.changing(runtime) as uow:
            session = uow.session
            if not await _in_catalog(session, org_id=org_id, sku=sku):
                raise NotFound(f"no product {sku} in this customer's catalog")
            taken = await session.scalar(
                select(CustomerProductNumber.sku).where(
                    CustomerProductNumber.org_id == org_id,
                    CustomerProductNumber.number == number,
                    CustomerProductNumber.sku != sku,
                )
            )
            if taken is not None:
                raise Conflict(f"{number} is already this customer's number for {taken}")
            row = await session.get(CustomerProductNumber, (org_id, sku))
            previous = row.number if row else None
            if previous == number:
                return read
            if row is None:
                session.add(CustomerProductNumber(org_id=org_id, sku=sku, number=number))
            else:
                row.number = number
                row.updated_at = utcnow()
            await session.flush()
            uow.publish(
                events.CustomerProductNumberSet(
                    org_id=org_id, sku=sku, number=number, previous=previous
                ),
                principal,
            )
    except IntegrityError as exc:
        # Another request changed the same number or product a moment ago; ours lost.
        raise Conflict(
            f"another change to this customer's product numbers came first; {number} was not set"
        ) from exc
    return read


async def remove_product_number(*, runtime: ServiceRuntime, principal: Principal, sku: str) -> None:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "edit", CustomerProductNumbers(org_id=org_id))
    async with revision.changing(runtime) as uow:
        row = await uow.session.get(CustomerProductNumber, (org_id, sku))
        if row is None:
            raise NotFound(f"this customer has no own number for product {sku}")
        previous = row.number
        await uow.session.delete(row)
        uow.publish(
            events.CustomerProductNumberRemoved(org_id=org_id, sku=sku, previous=previous),
            principal,
        )
