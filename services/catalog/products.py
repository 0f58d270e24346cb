"""Products as a customer sees them: the visible products at its prices, price quotes for
cart and orders (the one source of prices), and its own product numbers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.errors import Conflict, NotFound
from libs.common.paging import decode_cursor, page_of
from libs.common.principals import Principal, org_in_view
from libs.common.resources import Catalog, CustomerProductNumbers
from libs.common.runtime import ServiceRuntime
from libs.contracts.catalog import PriceQuote, QuotedLine
from services.catalog import events
from services.catalog.models import (
    TARGET_GROUP,
    TARGET_ORG,
    AssortmentItem,
    CustomerGroupMember,
    CustomerPrice,
    CustomerProductNumber,
    Product,
    Promotion,
    PromotionTarget,
)
from services.catalog.pricing import Offer, price_for
from services.catalog.schemas import (
    PRODUCTS_PAGE_DEFAULT,
    AppliedPromotion,
    ProductNumberRead,
    ProductPage,
    ProductRead,
)


def _offer(promotion: Promotion) -> Offer:
    return Offer(
        id=promotion.id,
        name=promotion.name,
        kind=promotion.kind,
        value=promotion.value,
        currency=promotion.currency,
        valid_from=promotion.valid_from,
        valid_to=promotion.valid_to,
        skus=frozenset(p.sku for p in promotion.products),
    )


async def _offers(session: AsyncSession, *, org_id: str, now: datetime) -> list[Offer]:
    """The promotions running now for `org_id`, directly or through one of its groups."""
    groups = select(CustomerGroupMember.group).where(CustomerGroupMember.org_id == org_id)
    targeted = select(PromotionTarget.promotion_id).where(
        or_(
            and_(PromotionTarget.kind == TARGET_ORG, PromotionTarget.ref == org_id),
            and_(PromotionTarget.kind == TARGET_GROUP, PromotionTarget.ref.in_(groups)),
        )
    )
    running = await session.scalars(
        select(Promotion).where(
            Promotion.id.in_(targeted),
            Promotion.ended_at.is_(None),
            Promotion.valid_from <= now,
            or_(Promotion.valid_to.is_(None), Promotion.valid_to > now),
        )
    )
    return [_offer(promotion) for promotion in running]


async def _has_assortment(session: AsyncSession, org_id: str) -> bool:
    count = await session.scalar(
        select(func.count()).select_from(AssortmentItem).where(AssortmentItem.org_id == org_id)
    )
    return bool(count)


async def _visible(
    session: AsyncSession,
    *,
    org_id: str,
    now: datetime,
    skus: list[str] | None = None,
    q: str | None = None,
    after_sku: str | None = None,
    limit: int | None = None,
) -> list[ProductRead]:
    """The products `org_id` may buy, at its prices: its assortment (or everything when it
    has none assigned), its own price where set and the base price otherwise, then the best
    running promotion; with its own product numbers. `q` matches SKU, name or number."""
    query = (
        select(Product, CustomerPrice.price, CustomerProductNumber.number)
        .outerjoin(
            CustomerPrice, (CustomerPrice.sku == Product.sku) & (CustomerPrice.org_id == org_id)
        )
        .outerjoin(
            CustomerProductNumber,
            (CustomerProductNumber.sku == Product.sku) & (CustomerProductNumber.org_id == org_id),
        )
    )
    if await _has_assortment(session, org_id):
        query = query.join(
            AssortmentItem,
            (AssortmentItem.sku == Product.sku) & (AssortmentItem.org_id == org_id),
        )
    if skus is not None:
        query = query.where(Product.sku.in_(skus))
    needle = (q or "").strip().lower()
    if needle:
        # autoescape: a "%" or "_" the customer types is a character, not a wildcard.
        query = query.where(
            or_(
                func.lower(Product.sku).contains(needle, autoescape=True),
                func.lower(Product.name).contains(needle, autoescape=True),
                func.lower(CustomerProductNumber.number).contains(needle, autoescape=True),
            )
        )
    if after_sku is not None:
        query = query.where(Product.sku > after_sku)
    query = query.order_by(Product.sku)
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    offers = await _offers(session, org_id=org_id, now=now) if rows else []
    products = []
    for product, own_price, number in rows:
        priced = price_for(
            sku=product.sku,
            base_price=product.price,
            own_price=own_price,
            currency=product.currency,
            offers=offers,
            now=now,
        )
        offer = priced.promotion
        products.append(
            ProductRead(
                sku=product.sku,
                name=product.name,
                price=priced.price,
                currency=product.currency,
                base_price=product.price,
                customer_price=own_price is not None,
                price_before_promotion=priced.price_before_promotion,
                promotion=None
                if offer is None
                else AppliedPromotion(
                    id=offer.id,
                    name=offer.name,
                    kind=offer.kind,
                    value=offer.value,
                    currency=offer.currency,
                    valid_to=offer.valid_to,
                ),
                customer_product_number=number,
            )
        )
    return products


async def list_products(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    q: str | None,
    limit: int = PRODUCTS_PAGE_DEFAULT,
    cursor: str | None = None,
) -> ProductPage:
    """A page of the products in view, by SKU; `cursor` is the previous page's `next_cursor`."""
    org_id = org_in_view(principal)
    (after_sku,) = decode_cursor(cursor, parts=1) if cursor else (None,)
    runtime.authorizer.authorize(principal, "read", Catalog(org_id=org_id))
    async with runtime.reading() as session:
        found = await _visible(
            session, org_id=org_id, now=utcnow(), q=q, after_sku=after_sku, limit=limit + 1
        )
    items, next_cursor = page_of(found, limit=limit, key=lambda p: (p.sku,))
    return ProductPage(items=items, next_cursor=next_cursor)


async def quote(*, runtime: ServiceRuntime, org_id: str, skus: list[str]) -> PriceQuote:
    """The one source of prices for cart and orders: the same numbers as the product list."""
    now = utcnow()
    async with runtime.reading() as session:
        visible = await _visible(session, org_id=org_id, now=now, skus=skus)
    lines = {
        p.sku: QuotedLine(
            sku=p.sku,
            name=p.name,
            unit_price=p.price,
            currency=p.currency,
            base_price=p.base_price,
            price_before_promotion=p.price_before_promotion,
            promotion_id=p.promotion.id if p.promotion else None,
            promotion_name=p.promotion.name if p.promotion else None,
            customer_product_number=p.customer_product_number,
        )
        for p in visible
    }
    return PriceQuote(
        org_id=org_id,
        lines=lines,
        unavailable=sorted(s for s in set(skus) if s not in lines),
        quoted_at=now,
    )


# ---------------------------------------------------------------- customer product numbers


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
        async with runtime.unit_of_work() as uow:
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
    async with runtime.unit_of_work() as uow:
        row = await uow.session.get(CustomerProductNumber, (org_id, sku))
        if row is None:
            raise NotFound(f"this customer has no own number for product {sku}")
        previous = row.number
        await uow.session.delete(row)
        uow.publish(
            events.CustomerProductNumberRemoved(org_id=org_id, sku=sku, previous=previous),
            principal,
        )
