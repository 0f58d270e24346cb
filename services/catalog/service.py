"""Catalog's business functions: products as a customer sees them, price quotes, administration."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.principals import Principal, org_in_view
from libs.common.quotes import Quote, QuotedLine
from libs.common.resources import Administration, Catalog
from libs.common.runtime import ServiceRuntime
from services.catalog import events
from services.catalog.models import AssortmentItem, CustomerPrice, Product
from services.catalog.schemas import (
    AssortmentRead,
    CustomerPriceRead,
    ProductCreate,
    ProductPage,
    ProductRead,
)

ADMINISTRATION = Administration(area="catalog")


async def _visible(
    session: AsyncSession, *, org_id: str, skus: list[str] | None = None, q: str | None = None
) -> list[ProductRead]:
    """The products `org_id` may buy, at its prices: its assortment (or everything when it
    has none assigned), with its own price where set and the base price otherwise."""
    has_assortment = await session.scalar(
        select(func.count()).select_from(AssortmentItem).where(AssortmentItem.org_id == org_id)
    )
    query = select(Product, CustomerPrice.price).outerjoin(
        CustomerPrice, (CustomerPrice.sku == Product.sku) & (CustomerPrice.org_id == org_id)
    )
    if has_assortment:
        query = query.join(
            AssortmentItem,
            (AssortmentItem.sku == Product.sku) & (AssortmentItem.org_id == org_id),
        )
    if skus is not None:
        query = query.where(Product.sku.in_(skus))
    if q:
        pattern = f"%{q.strip().lower()}%"
        query = query.where(
            or_(func.lower(Product.sku).like(pattern), func.lower(Product.name).like(pattern))
        )
    rows = (await session.execute(query.order_by(Product.sku))).all()
    return [
        ProductRead(
            sku=product.sku,
            name=product.name,
            price=own_price if own_price is not None else product.price,
            currency=product.currency,
            base_price=product.price,
            customer_price=own_price is not None,
        )
        for product, own_price in rows
    ]


async def list_products(
    *, runtime: ServiceRuntime, principal: Principal, q: str | None
) -> ProductPage:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", Catalog(org_id=org_id))
    async with runtime.reading() as session:
        return ProductPage(items=await _visible(session, org_id=org_id, q=q))


async def quote(*, runtime: ServiceRuntime, org_id: str, skus: list[str]) -> Quote:
    """The one source of prices for cart and orders."""
    async with runtime.reading() as session:
        visible = await _visible(session, org_id=org_id, skus=skus)
    lines = {
        p.sku: QuotedLine(
            sku=p.sku,
            name=p.name,
            unit_price=p.price,
            currency=p.currency,
            base_price=p.base_price,
        )
        for p in visible
    }
    return Quote(
        org_id=org_id, lines=lines, unavailable=sorted(s for s in set(skus) if s not in lines)
    )


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
            uow.publish(events.PRODUCT_CREATED, body.model_dump(mode="json"), principal)
    except IntegrityError as exc:
        raise Conflict(f"a product with SKU {body.sku} already exists") from exc
    return ProductRead(
        sku=body.sku,
        name=body.name,
        price=body.price,
        currency=body.currency,
        base_price=body.price,
        customer_price=False,
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
        read = CustomerPriceRead(org_id=org_id, sku=sku, price=price, currency=product.currency)
        uow.publish(
            events.CUSTOMER_PRICE_SET,
            read.model_dump(mode="json"),
            principal,
            subject_org_id=org_id,
        )
    return read


async def set_assortment(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, skus: list[str]
) -> AssortmentRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    wanted = sorted(set(skus))
    async with runtime.unit_of_work() as uow:
        session = uow.session
        known = set(
            (await session.scalars(select(Product.sku).where(Product.sku.in_(wanted)))).all()
        )
        unknown = [sku for sku in wanted if sku not in known]
        if unknown:
            raise Invalid(f"unknown SKUs: {', '.join(unknown)}")
        existing = (
            await session.scalars(select(AssortmentItem).where(AssortmentItem.org_id == org_id))
        ).all()
        for item in existing:
            if item.sku not in known:
                await session.delete(item)
        present = {item.sku for item in existing}
        for sku in wanted:
            if sku not in present:
                session.add(AssortmentItem(org_id=org_id, sku=sku))
        read = AssortmentRead(org_id=org_id, skus=wanted)
        uow.publish(events.ASSORTMENT_SET, read.model_dump(), principal, subject_org_id=org_id)
    return read
