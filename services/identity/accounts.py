"""Accounts: the seller organisation and first admin at start-up, who am I, my password."""

from __future__ import annotations

import time
from uuid import uuid4

from sqlalchemy import select

from libs.common.clock import utcnow
from libs.common.errors import Invalid, Unauthenticated
from libs.common.principals import ActingSession, Principal, StaffUser
from libs.common.resources import Account
from libs.common.runtime import ServiceRuntime
from libs.common.tokens import claims_of
from services.identity import events
from services.identity.acting_sessions import acting_context, end_live_sessions, live_session
from services.identity.login_tokens import login_principal
from services.identity.models import Organization, User
from services.identity.org_people import as_org, as_user
from services.identity.org_people import fresh_caller as _fresh
from services.identity.parts import identity_parts
from services.identity.passwords import DUMMY_HASH, check_password_policy, hash_password
from services.identity.schemas import STAFF_PERMISSIONS, ActingContextRead, MeRead, TokenRead
from services.identity.settings import identity_settings

# Start-up work (the seller organisation, the first admin) is done by the platform itself.
SYSTEM_ID = "system"


async def bootstrap(*, runtime: ServiceRuntime) -> None:
    """Create the seller organisation and the first platform admin if they are missing."""
    settings = identity_settings(runtime)
    async with runtime.unit_of_work() as uow:
        session = uow.session
        seller = await session.scalar(select(Organization).where(Organization.is_seller))
        system = StaffUser(id=SYSTEM_ID, org_id="", name="onbehalf")
        if seller is None:
            seller = Organization(
                id=str(uuid4()),
                name=settings.seller_org_name,
                contract_number=settings.seller_contract_number,
                country=settings.seller_country,
                is_seller=True,
                status="active",
                allow_assistance=False,
            )
            session.add(seller)
            await session.flush()
            uow.publish(as_org(events.OrgCreated, seller), system)
        email = settings.admin_email.strip().lower()
        admin = await session.scalar(select(User).where(User.email == email))
        if admin is None:
            admin = User(
                id=str(uuid4()),
                email=email,
                name=settings.admin_name,
                password_hash=hash_password(settings.admin_password),
                kind="staff",
                org_id=seller.id,
                roles=["platform_admin"],
                permissions=sorted(STAFF_PERMISSIONS),
                active=True,
            )
            session.add(admin)
            uow.publish(as_user(events.UserCreated, admin), system)


async def me(*, runtime: ServiceRuntime, principal: Principal) -> MeRead:
    async with runtime.reading() as session:
        if isinstance(principal, ActingSession):
            record = await live_session(session, principal)
            user = await session.get(User, principal.actor_id)
            acting_as: ActingContextRead | None = acting_context(record)
        else:
            user = await session.get(User, principal.id)
            acting_as = None
    if user is None:
        raise Unauthenticated("the token's user no longer exists")
    return MeRead(
        id=user.id,
        email=user.email,
        name=user.name,
        kind="staff" if user.kind == "staff" else "customer",
        org_id=user.org_id,
        roles=list(user.roles),
        permissions=list(user.permissions),
        acting_as=acting_as,
    )


def _own_user_id(principal: Principal) -> str:
    return principal.actor_id if isinstance(principal, ActingSession) else principal.id


async def change_password(
    *, runtime: ServiceRuntime, principal: Principal, current_password: str, new_password: str
) -> TokenRead:
    """Ends every other session of the user (tokens of the old generation are refused
    everywhere); the caller gets a token of the new generation for the same login session."""
    # scrypt runs on the bounded pool, outside the write transaction (on SQLite that holds
    # the database's one write lock): never on the event loop.
    parts = identity_parts(runtime)
    new_hash = await parts.passwords.hash(new_password)
    async with runtime.reading() as session:
        holder = await session.get(User, _own_user_id(principal))
        stored = holder.password_hash if holder is not None else DUMMY_HASH
    current_ok = await parts.passwords.verify(current_password, stored)
    async with runtime.unit_of_work() as uow:
        caller = await _fresh(uow.session, principal)
        runtime.authorizer.authorize(
            caller,
            "change_credentials",
            Account(user_id=principal.id, org_id=principal.org_id)
            if not isinstance(principal, ActingSession)
            else Account(user_id=principal.actor_id, org_id=principal.actor_org_id),
        )
        user = await uow.session.get(User, caller.id)
        assert user is not None  # _fresh found it
        if not current_ok or user.password_hash != stored:
            raise Invalid("the current password is wrong")
        weak = check_password_policy(
            new_password,
            email=user.email,
            min_length=identity_settings(runtime).password_min_length,
        )
        if weak:
            raise Invalid(weak, reason="weak_password")
        user.password_hash = new_hash
        user.generation += 1
        uow.publish(
            events.PasswordChanged(user_id=user.id, generation=user.generation, active=user.active),
            caller,
        )
        await end_live_sessions(
            uow,
            reason="revoked",
            detail="the staff member's password changed",
            actor=caller,
            actor_id=user.id,
        )
        org = await uow.session.get(Organization, user.org_id)
        assert org is not None  # a foreign key
        renewed = login_principal(
            user, org, login_session_id=principal.login_session_id or str(uuid4())
        )
    # The login session keeps its expiry: a password change does not lengthen it.
    expires_at = (principal.expires_at or utcnow()).timestamp()
    token = parts.signer.sign(claims_of(renewed), expires_at=expires_at)
    return TokenRead(access_token=token, expires_in=max(0, int(expires_at - time.time())))
