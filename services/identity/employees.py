"""A customer organisation's employees, managed by its own admin (or a platform admin): list
them with their role and Active flag, change roles, deactivate and reactivate.

Every change raises the user's rights generation and publishes `identity.user.updated`, so
the revocation projector refuses the employee's older tokens in every service within a
second, exactly as for staff. Never while acting (policy: `manage_users`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.paging import decode_cursor, page_of
from libs.common.principals import Principal
from libs.common.runtime import ServiceRuntime
from libs.contracts.identity import UserUpdated
from services.identity.invitations import check_roles
from services.identity.models import User
from services.identity.org_people import customer_org, fresh_caller, policy_org, user_record
from services.identity.schemas import PEOPLE_PAGE_DEFAULT


def read(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "roles": list(user.roles),
        # One role each (an admin has no other): the first is the one to show.
        "role": user.roles[0] if user.roles else None,
        "active": user.active,
        "created_at": user.created_at,
    }


async def list_employees(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: str,
    active: bool | None,
    limit: int = PEOPLE_PAGE_DEFAULT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of the organisation's users by name (`items`, `next_cursor`)."""
    after = decode_cursor(cursor, parts=2) if cursor else None
    async with runtime.reading() as session:
        caller = await fresh_caller(session, principal)
        org = await customer_org(session, org_id)
        runtime.authorizer.authorize(caller, "manage_users", await policy_org(session, org))
        if org.is_seller:
            raise NotFound("the seller's staff are not a customer's employees")
        query = select(User).where(User.org_id == org_id, User.kind == "customer")
        if active is not None:
            query = query.where(User.active.is_(active))
        if after is not None:
            name, user_id = after
            query = query.where(or_(User.name > name, and_(User.name == name, User.id > user_id)))
        users = (await session.scalars(query.order_by(User.name, User.id).limit(limit + 1))).all()
    page, next_cursor = page_of(users, limit=limit, key=lambda u: (u.name, u.id))
    return {"items": [read(user) for user in page], "next_cursor": next_cursor}


async def update_employee(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: str,
    user_id: str,
    roles: list[str] | None,
    active: bool | None,
) -> dict[str, Any]:
    if roles is None and active is None:
        raise Invalid("nothing to change: send roles and/or active")
    async with runtime.unit_of_work() as uow:
        session = uow.session
        caller = await fresh_caller(session, principal)
        org = await customer_org(session, org_id)
        runtime.authorizer.authorize(caller, "manage_users", await policy_org(session, org))
        user = await session.get(User, user_id)
        if user is None or user.org_id != org_id or user.kind != "customer":
            raise NotFound(f"employee {user_id} does not exist in this organisation")
        changed: list[str] = []
        if roles is not None:
            clean = check_roles(roles)
            if clean != sorted(user.roles):
                user.roles = clean
                changed.append("roles")
        if active is not None and active != user.active:
            user.active = active
            changed.append("active")
        if not changed:
            return read(user)
        await session.flush()
        # The organisation keeps an active admin: nobody locks the customer out of itself.
        admins = (
            await session.scalars(
                select(User.roles).where(
                    User.org_id == org_id, User.kind == "customer", User.active.is_(True)
                )
            )
        ).all()
        if not any("admin" in found for found in admins):
            raise Conflict(
                "the organisation would have no active admin left: make someone else admin first",
                reason="last_admin",
            )
        # Tokens issued before carry the old rights: every service refuses them from now.
        user.generation += 1
        await session.flush()
        uow.publish(
            UserUpdated(user=user_record(user), changed=changed, generation=user.generation),
            caller,
            subject_org_id=org_id,
        )
        return read(user)
