"""Promotions: the seller creates, lists and ends them; pricing.py applies them."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar
from uuid import uuid4

from sqlalchemy import and_, or_, select

from libs.common.clock import utcnow
from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.paging import decode_time_cursor, page_of
from libs.common.principals import Principal
from libs.common.runtime import ServiceRuntime
from services.catalog import events, revision
from services.catalog.administration import ADMINISTRATION, unknown_skus
from services.catalog.models import (
    TARGET_GROUP,
    TARGET_ORG,
    Promotion,
    PromotionProduct,
    PromotionTarget,
)
from services.catalog.schemas import (
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionStatus,
)


def _status(promotion: Promotion, now: datetime) -> PromotionStatus:
    if promotion.ended_at is not None or (
        promotion.valid_to is not None and promotion.valid_to <= now
    ):
        return "ended"
    return "scheduled" if promotion.valid_from > now else "active"


# One mapping, checked by mypy against both shapes it builds: the API's read and the event.
AsPromotion = TypeVar("AsPromotion", PromotionRead, events.PromotionCreated)


def _as_promotion(shape: type[AsPromotion], promotion: Promotion, now: datetime) -> AsPromotion:
    return shape(
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


def _promotion_read(promotion: Promotion, now: datetime) -> PromotionRead:
    return _as_promotion(PromotionRead, promotion, now)


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
    async with revision.changing(runtime) as uow:
        unknown = await unknown_skus(uow.session, skus)
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
        uow.publish(_as_promotion(events.PromotionCreated, promotion, now), principal)
    return read


async def list_promotions(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    status: PromotionStatus | None,
    org_id: str | None,
    group: str | None,
    limit: int,
    cursor: str | None = None,
) -> PromotionPage:
    """Newest first, a page after `cursor`; `org_id` and `group` name direct targets (not an
    org's groups)."""
    after = decode_time_cursor(cursor) if cursor else None
    runtime.authorizer.authorize(principal, "manage", ADMINISTRATION)
    now = utcnow()
    query = select(Promotion).order_by(Promotion.created_at.desc(), Promotion.id)
    if after is not None:
        created, promotion_id = after
        query = query.where(
            or_(
                Promotion.created_at < created,
                and_(Promotion.created_at == created, Promotion.id > promotion_id),
            )
        )
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
        found = (await session.scalars(query.limit(limit + 1))).all()
        page, next_cursor = page_of(
            found, limit=limit, key=lambda p: (p.created_at.isoformat(), p.id)
        )
        return PromotionPage(items=[_promotion_read(p, now) for p in page], next_cursor=next_cursor)


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
    async with revision.changing(runtime) as uow:
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
