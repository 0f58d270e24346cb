"""Catalog's business functions: products as a customer sees them, price quotes, administration."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import uuid4

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.principals import Principal, org_in_view
from libs.common.resources import Administration, Catalog, CustomerProductNumbers
from libs.common.runtime import ServiceRuntime
from libs.contracts.catalog import PriceQuote, QuotedLine
from services.catalog import events
from services.catalog.models import (
    AssortmentItem,
    CustomerGroupMember,
    CustomerPrice,
    CustomerProductNumber,
    Product,
    Promotion,
    PromotionProduct,
    PromotionTarget,
)
from services.catalog.pricing import Offer, price_for
from services.catalog.schemas import (
    AppliedPromotion,
    AssortmentRead,
    CustomerGroupsRead,
    CustomerPriceRead,
    ProductCreate,
    ProductNumberRead,
    ProductPage,
    ProductRead,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionStatus,
)

ADMINISTRATION = Administration(area="catalog")
TARGET_ORG = "org"
TARGET_GROUP = "group"


# ---------------------------------------------------------------- the customer's view


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
    rows = (await session.execute(query.order_by(Product.sku))).all()
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
    *, runtime: ServiceRuntime, principal: Principal, q: str | None
) -> ProductPage:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", Catalog(org_id=org_id))
    async with runtime.reading() as session:
        return ProductPage(items=await _visible(session, org_id=org_id, now=utcnow(), q=q))


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


# ---------------------------------------------------------------- administration


async def create_product(
    *, runtime: ServiceRuntime, principal: Principal, body: ProductCreate
) -> ProductRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    try:
        async with runtime.unit_of_work() as uow:
            uow.session.add(
                Product(sku=body.sku, name=body.name, price=body.price, currency=body.currency)
            )
            await uow.session.flush()
            created = events.ProductCreated(
                sku=body.sku, name=body.name, price=body.price, currency=body.currency
            )
            uow.publish(created, principal)
    except IntegrityError as exc:
        raise Conflict(f"a product with SKU {body.sku} already exists") from exc
    return ProductRead(
        sku=body.sku,
        name=body.name,
        price=body.price,
        currency=body.currency,
        base_price=body.price,
        customer_price=False,
        price_before_promotion=body.price,
    )


async def set_customer_price(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, sku: str, price: Decimal
) -> CustomerPriceRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    async with runtime.unit_of_work() as uow:
        product = await uow.session.get(Product, sku)
        if product is None:
            raise NotFound(f"unknown SKU {sku}")
        row = await uow.session.get(CustomerPrice, (org_id, sku))
        if row is None:
            uow.session.add(CustomerPrice(org_id=org_id, sku=sku, price=price))
        else:
            row.price = price
            row.updated_at = utcnow()
        # A customer price is in the product's currency: see docs/catalog.md.
        read = CustomerPriceRead(org_id=org_id, sku=sku, price=price, currency=product.currency)
        uow.publish(
            events.CustomerPriceSet(
                org_id=read.org_id, sku=read.sku, price=read.price, currency=read.currency
            ),
            principal,
            subject_org_id=org_id,
        )
    return read


async def remove_customer_price(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, sku: str
) -> None:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    async with runtime.unit_of_work() as uow:
        row = await uow.session.get(CustomerPrice, (org_id, sku))
        if row is None:
            raise NotFound(f"no customer price for {sku} for this organisation")
        previous = row.price
        await uow.session.delete(row)
        uow.publish(
            events.CustomerPriceRemoved(org_id=org_id, sku=sku, previous=previous),
            principal,
            subject_org_id=org_id,
        )


async def _unknown_skus(session: AsyncSession, skus: Sequence[str]) -> list[str]:
    known = set((await session.scalars(select(Product.sku).where(Product.sku.in_(skus)))).all())
    return [sku for sku in skus if sku not in known]


async def set_assortment(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, skus: list[str]
) -> AssortmentRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    wanted = sorted(set(skus))
    async with runtime.unit_of_work() as uow:
        session = uow.session
        unknown = await _unknown_skus(session, wanted)
        if unknown:
            raise Invalid(f"unknown SKUs: {', '.join(unknown)}")
        existing = (
            await session.scalars(select(AssortmentItem).where(AssortmentItem.org_id == org_id))
        ).all()
        for item in existing:
            if item.sku not in wanted:
                await session.delete(item)
        present = {item.sku for item in existing}
        for sku in wanted:
            if sku not in present:
                session.add(AssortmentItem(org_id=org_id, sku=sku))
        read = AssortmentRead(org_id=org_id, skus=wanted)
        uow.publish(
            events.AssortmentSet(org_id=org_id, skus=read.skus), principal, subject_org_id=org_id
        )
    return read


async def get_customer_groups(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str
) -> CustomerGroupsRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    async with runtime.reading() as session:
        groups = await session.scalars(
            select(CustomerGroupMember.group)
            .where(CustomerGroupMember.org_id == org_id)
            .order_by(CustomerGroupMember.group)
        )
        return CustomerGroupsRead(org_id=org_id, groups=list(groups))


async def set_customer_groups(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, groups: list[str]
) -> CustomerGroupsRead:
    """Replace the groups `org_id` belongs to (an empty list takes it out of every group)."""
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    wanted = sorted(set(groups))
    async with runtime.unit_of_work() as uow:
        session = uow.session
        await session.execute(
            delete(CustomerGroupMember).where(CustomerGroupMember.org_id == org_id)
        )
        session.add_all(CustomerGroupMember(org_id=org_id, group=group) for group in wanted)
        read = CustomerGroupsRead(org_id=org_id, groups=wanted)
        uow.publish(
            events.CustomerGroupsSet(org_id=org_id, groups=read.groups),
            principal,
            subject_org_id=org_id,
        )
    return read


def _status(promotion: Promotion, now: datetime) -> PromotionStatus:
    if promotion.ended_at is not None or (
        promotion.valid_to is not None and promotion.valid_to <= now
    ):
        return "ended"
    return "scheduled" if promotion.valid_from > now else "active"


def _promotion_read(promotion: Promotion, now: datetime) -> PromotionRead:
    return PromotionRead(
        id=promotion.id,
        name=promotion.name,
        kind=promotion.kind,
        value=promotion.value,
        currency=promotion.currency,
        valid_from=promotion.valid_from,
        valid_to=promotion.valid_to,
        ended_at=promotion.ended_at,
        status=_status(promotion, now),
        org_ids=sorted(t.ref for t in promotion.targets if t.kind == TARGET_ORG),
        groups=sorted(t.ref for t in promotion.targets if t.kind == TARGET_GROUP),
        skus=sorted(p.sku for p in promotion.products),
        created_at=promotion.created_at,
    )


async def create_promotion(
    *, runtime: ServiceRuntime, principal: Principal, body: PromotionCreate
) -> PromotionRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    now = utcnow()
    valid_from = body.valid_from or now
    if body.valid_to is not None and body.valid_to <= now:
        raise Invalid("valid_to is in the past: the promotion would never run")
    if body.valid_to is not None and body.valid_to <= valid_from:
        raise Invalid("valid_to must be after valid_from")
    skus = sorted(set(body.skus))
    async with runtime.unit_of_work() as uow:
        unknown = await _unknown_skus(uow.session, skus)
        if unknown:
            raise Invalid(f"unknown SKUs: {', '.join(unknown)}")
        promotion = Promotion(
            id=str(uuid4()),
            name=body.name,
            kind=body.kind,
            value=body.value,
            currency=body.currency,
            valid_from=valid_from,
            valid_to=body.valid_to,
            created_at=now,
            targets=[PromotionTarget(kind=TARGET_ORG, ref=o) for o in sorted(set(body.org_ids))]
            + [PromotionTarget(kind=TARGET_GROUP, ref=g) for g in sorted(set(body.groups))],
            products=[PromotionProduct(sku=sku) for sku in skus],
        )
        uow.session.add(promotion)
        await uow.session.flush()
        read = _promotion_read(promotion, now)
        uow.publish(events.PromotionCreated(**read.model_dump()), principal)
    return read


async def list_promotions(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    status: PromotionStatus | None,
    org_id: str | None,
    group: str | None,
    limit: int,
) -> PromotionPage:
    """Newest first; `org_id` and `group` name direct targets (not an org's groups)."""
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    now = utcnow()
    query = select(Promotion).order_by(Promotion.created_at.desc(), Promotion.id)
    for kind, ref in ((TARGET_ORG, org_id), (TARGET_GROUP, group)):
        if ref is not None:
            query = query.where(
                Promotion.id.in_(
                    select(PromotionTarget.promotion_id).where(
                        PromotionTarget.kind == kind, PromotionTarget.ref == ref
                    )
                )
            )
    if status == "ended":
        query = query.where(
            or_(
                Promotion.ended_at.is_not(None),
                and_(Promotion.valid_to.is_not(None), Promotion.valid_to <= now),
            )
        )
    elif status == "scheduled":
        query = query.where(Promotion.ended_at.is_(None), Promotion.valid_from > now)
    elif status == "active":
        query = query.where(
            Promotion.ended_at.is_(None),
            Promotion.valid_from <= now,
            or_(Promotion.valid_to.is_(None), Promotion.valid_to > now),
        )
    async with runtime.reading() as session:
        found = (await session.scalars(query.limit(limit))).all()
        return PromotionPage(items=[_promotion_read(p, now) for p in found])


async def get_promotion(
    *, runtime: ServiceRuntime, principal: Principal, promotion_id: str
) -> PromotionRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    async with runtime.reading() as session:
        promotion = await session.get(Promotion, promotion_id)
        if promotion is None:
            raise NotFound(f"promotion {promotion_id} does not exist")
        return _promotion_read(promotion, utcnow())


async def end_promotion(
    *, runtime: ServiceRuntime, principal: Principal, promotion_id: str
) -> PromotionRead:
    """End a promotion now; one that has not started yet then never runs."""
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    now = utcnow()
    async with runtime.unit_of_work() as uow:
        promotion = await uow.session.get(Promotion, promotion_id)
        if promotion is None:
            raise NotFound(f"promotion {promotion_id} does not exist")
        if _status(promotion, now) == "ended":
            raise Conflict(f"promotion {promotion_id} has already ended")
        promotion.ended_at = now
        # The window closes now; a scheduled one closes at its start, an empty window.
        promotion.valid_to = max(now, promotion.valid_from)
        read = _promotion_read(promotion, now)
        uow.publish(events.PromotionEnded(id=read.id, name=read.name, ended_at=now), principal)
    return read
