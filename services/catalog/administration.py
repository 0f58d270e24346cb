"""The seller's catalog administration: products, customer prices, assortments, customer groups."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.principals import Principal
from libs.common.resources import Administration
from libs.common.runtime import ServiceRuntime
from services.catalog import events, revision
from services.catalog.models import (
    AssortmentItem,
    CustomerGroupMember,
    CustomerPrice,
    Product,
)
from services.catalog.schemas import (
    AssortmentRead,
    CustomerGroupsRead,
    CustomerPriceRead,
    ProductCreate,
    ProductRead,
)

ADMINISTRATION = Administration(area="catalog")


async def create_product(
    *, runtime: ServiceRuntime, principal: Principal, body: ProductCreate
) -> ProductRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    try:
        async with revision.changing(runtime) as uow:
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
    async with revision.changing(runtime) as uow:
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
    async with revision.changing(runtime) as uow:
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


async def unknown_skus(session: AsyncSession, skus: Sequence[str]) -> list[str]:
    known = set((await session.scalars(select(Product.sku).where(Product.sku.in_(skus)))).all())
    return [sku for sku in skus if sku not in known]


async def set_assortment(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, skus: list[str]
) -> AssortmentRead:
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    wanted = sorted(set(skus))
    async with revision.changing(runtime) as uow:
        session = uow.session
        unknown = await unknown_skus(session, wanted)
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
    async with revision.changing(runtime) as uow:
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
