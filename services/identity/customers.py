"""The customers a staff member may act for: a search narrowed by a filter derived from the
policy, every row still decided by the policy."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from libs.common.authz import Authorizer
from libs.common.paging import decode_cursor, encode_cursor
from libs.common.policy_filter import Untranslatable, sql_filter
from libs.common.principals import Principal
from libs.common.resources import CustomerOrg
from libs.common.runtime import ServiceRuntime
from services.identity.models import Caretaker, Organization
from services.identity.org_people import fresh_caller as _fresh
from services.identity.schemas import CustomerPage, CustomerRead

log = structlog.get_logger("identity")


async def _policy_orgs(
    session: AsyncSession, orgs: Sequence[Organization]
) -> dict[str, CustomerOrg]:
    """`_policy_org` for many organisations, with one query for their caretakers."""
    caretakers: dict[str, list[str]] = {org.id: [] for org in orgs}
    if orgs:
        rows = await session.execute(
            select(Caretaker.org_id, Caretaker.user_id).where(Caretaker.org_id.in_(caretakers))
        )
        for org_id, user_id in rows:
            caretakers[org_id].append(user_id)
    return {
        org.id: CustomerOrg(
            id=org.id,
            name=org.name,
            status=org.status,
            allow_assistance=org.allow_assistance,
            caretaker_ids=caretakers[org.id],
            is_seller=org.is_seller,
        )
        for org in orgs
    }


# The SQL of `_may_act_for`, by Authorizer.conditions_key (policy revision and caller).
_FILTERS: OrderedDict[tuple[Any, ...], ColumnElement[bool] | None] = OrderedDict()
_FILTERS_SIZE = 2_000


def _may_act_for(authorizer: Authorizer, caller: Principal) -> ColumnElement[bool] | None:
    """The organisations the policy could let `caller` act for (`act_view`, which full
    acting implies), as SQL derived from the policy's own conditions; None when the policy
    says something the filter cannot translate (then every organisation is asked). Kept by
    the policy revision and the caller's attributes, as the conditions are."""
    key = authorizer.conditions_key(caller, "act_view", CustomerOrg)
    if key is not None and key in _FILTERS:
        _FILTERS.move_to_end(key)
        return _FILTERS[key]
    derived = _derive_filter(authorizer, caller)
    if key is not None:
        _FILTERS[key] = derived
        if len(_FILTERS) > _FILTERS_SIZE:
            _FILTERS.popitem(last=False)
    return derived


def _derive_filter(authorizer: Authorizer, caller: Principal) -> ColumnElement[bool] | None:
    try:
        return sql_filter(
            authorizer.conditions(caller, "act_view", CustomerOrg),
            resource=CustomerOrg,
            columns={
                "id": Organization.id,
                "name": Organization.name,
                "status": Organization.status,
                "allow_assistance": Organization.allow_assistance,
                "is_seller": Organization.is_seller,
            },
            relations={
                "caretaker_ids": lambda user_id: Organization.id.in_(
                    select(Caretaker.org_id).where(Caretaker.user_id == user_id)
                )
            },
        )
    except Untranslatable as exc:
        log.warning("customer_filter_untranslatable", error=str(exc))
        return None


async def list_customers(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> CustomerPage:
    """Organisations the caller may act for (in any mode), by name; the policy filters."""
    after = decode_cursor(cursor, parts=2) if cursor else None
    authorizer = runtime.authorizer
    found: list[CustomerRead] = []
    chunk = 200
    async with runtime.reading() as session:
        caller = await _fresh(session, principal)
        may_allow = _may_act_for(authorizer, caller)
        while len(found) <= limit:
            query = select(Organization).where(Organization.is_seller.is_(False))
            if q:
                pattern = f"%{q.strip().lower()}%"
                query = query.where(
                    or_(
                        func.lower(Organization.name).like(pattern),
                        func.lower(Organization.contract_number).like(pattern),
                        func.lower(Organization.country) == q.strip().lower(),
                    )
                )
            if after:
                query = query.where(
                    or_(
                        Organization.name > after[0],
                        (Organization.name == after[0]) & (Organization.id > after[1]),
                    )
                )
            if may_allow is not None:
                query = query.where(may_allow)
            orgs = (
                await session.scalars(
                    query.order_by(Organization.name, Organization.id).limit(chunk)
                )
            ).all()
            resources = await _policy_orgs(session, orgs)
            for org in orgs:
                # The filter only narrows the candidates: the policy still decides each one.
                resource = resources[org.id]
                if authorizer.decide(caller, "act_view", resource).allowed:
                    # The modes the policy allows now, so a page offers only those buttons.
                    full = authorizer.decide(caller, "act_full", resource).allowed
                    found.append(
                        CustomerRead(
                            id=org.id,
                            name=org.name,
                            contract_number=org.contract_number,
                            country=org.country,
                            status=org.status,
                            modes=["full", "view"] if full else ["view"],
                        )
                    )
                    if len(found) > limit:
                        break
            if len(orgs) < chunk:
                break
            after = (orgs[-1].name, orgs[-1].id)
    page = found[:limit]
    more = len(found) > limit
    return CustomerPage(
        items=page,
        next_cursor=encode_cursor(page[-1].name, page[-1].id) if more and page else None,
    )
