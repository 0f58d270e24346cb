"""Telling a customer's admins that staff acted for their organisation: the organisation's
choice (every session, a daily digest, or not at all), the mail at each session's start
(identity consumes its own `identity.acting_session.started`) and the digest loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.consumer import Delivery, checked_context, consume, event_data
from libs.common.errors import Invalid
from libs.common.events import EventContext
from libs.common.inbox import first_delivery
from libs.common.principals import Principal
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.customers import ActingNoticesChanged, ActingNoticeSent
from libs.contracts.identity import ActingSessionStarted
from services.identity.mail_templates import fmt_time, send_mail
from services.identity.models import (
    ActingSessionRecord,
    NoticeInbox,
    Organization,
    OrgPreferences,
)
from services.identity.org_people import active_admins, customer_org, fresh_caller, policy_org
from services.identity.parts import mail_committed
from services.identity.settings import IdentitySettings, identity_settings

log = structlog.get_logger("identity.acting_notices")

NoticeChoice = Literal["every_session", "daily_digest", "none"]


# ---------------------------------------------------------------- the organisation's choice


async def _preferences(session: AsyncSession, org_id: str) -> OrgPreferences | None:
    return await session.get(OrgPreferences, org_id)


async def read_notices(*, runtime: ServiceRuntime, principal: Principal, org_id: str) -> str:
    async with runtime.reading() as session:
        caller = await fresh_caller(session, principal)
        org = await customer_org(session, org_id)
        runtime.authorizer.authorize(caller, "set_notices", await policy_org(session, org))
        preferences = await _preferences(session, org_id)
    return preferences.acting_notices if preferences else "every_session"


async def set_notices(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, choice: NoticeChoice
) -> str:
    async with runtime.unit_of_work() as uow:
        caller = await fresh_caller(uow.session, principal)
        org = await customer_org(uow.session, org_id)
        runtime.authorizer.authorize(caller, "set_notices", await policy_org(uow.session, org))
        preferences = await _preferences(uow.session, org_id)
        now = datetime.now(UTC)
        if preferences is None:
            preferences = OrgPreferences(org_id=org_id, acting_notices=choice, digest_until=now)
            uow.session.add(preferences)
        elif preferences.acting_notices != choice:
            # A digest starts from the moment it was chosen (earlier sessions were told).
            preferences.digest_until = now
            preferences.previous_notices = preferences.acting_notices
            preferences.updated_at = now
        preferences.acting_notices = choice
        uow.publish(
            ActingNoticesChanged(org_id=org_id, acting_notices=choice),
            caller,
            subject_org_id=org_id,
        )
    return choice


# ---------------------------------------------------------------- telling the customer


def _links(settings: IdentitySettings, org_id: str) -> dict[str, str]:
    return {
        "assistance_url": f"{settings.console_url.rstrip('/')}/assistance",
        "consent_url": f"/v1/orgs/{org_id}/consent",
    }


async def _seller_name(session: AsyncSession) -> str:
    seller = await session.scalar(select(Organization.name).where(Organization.is_seller))
    return seller or "the seller"


async def notify_session_started(
    uow: UnitOfWork, started: ActingSessionStarted, context: EventContext
) -> None:
    settings = identity_settings(uow.runtime)
    org_id = started.customer_org_id
    record = await uow.session.get(ActingSessionRecord, started.session_id)
    started_at = record.started_at if record is not None else datetime.now(UTC)
    preferences = await _preferences(uow.session, org_id)
    if preferences is not None:
        # The choice in force when the session started, not when this event is read.
        choice = preferences.acting_notices
        if started_at < preferences.updated_at:
            choice = preferences.previous_notices or "every_session"
        if choice != "every_session":
            return  # the digest tells them, or they chose not to hear
    admins = await active_admins(uow.session, org_id)
    seller = await _seller_name(uow.session)
    explained = (
        "In full mode staff see what your users see and may change the cart and place orders."
        if started.mode == "full"
        else "In view mode staff see what your users see and change nothing."
    )
    for admin in admins:
        await send_mail(
            uow,
            to=admin.email,
            key="acting_notice",
            values={
                "name": admin.name,
                "actor_name": started.actor_name,
                "seller_name": seller,
                "org_name": started.customer_name,
                "mode": started.mode,
                "mode_explained": explained,
                "started_at": fmt_time(started_at),
                "session_id": started.session_id,
                **_links(settings, org_id),
            },
        )
    if admins:
        uow.publish(
            ActingNoticeSent(
                org_id=org_id,
                session_ids=[started.session_id],
                recipients=len(admins),
                digest=False,
            ),
            context,
        )


async def tell_customers(runtime: ServiceRuntime) -> None:
    """Consume `identity.acting_session.started`: each session is told once (inbox by id)."""

    async def handle(batch: list[Delivery]) -> None:
        for delivery in batch:
            started = event_data(delivery.event, ActingSessionStarted)
            context = checked_context(delivery.event, policy_revision=runtime.authorizer.revision)
            async with runtime.unit_of_work() as uow:
                if not await first_delivery(
                    await uow.statements(), NoticeInbox, delivery.event.get_id()
                ):
                    continue
                await notify_session_started(uow, started, context)
        mail_committed(runtime)

    await consume(
        runtime.js,
        service="identity",
        durable="identity-notices",
        subject=ActingSessionStarted.subject(),
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )


async def send_digests(runtime: ServiceRuntime) -> int:
    """One pass: every organisation on the daily digest whose period has passed gets one
    mail per admin listing the sessions started since the last digest. Returns how many
    organisations were told."""
    settings = identity_settings(runtime)
    now = datetime.now(UTC)
    due_before = now - timedelta(seconds=settings.acting_digest_period_seconds)
    told = 0
    async with runtime.unit_of_work() as uow:
        session = uow.session
        due = (
            await session.scalars(
                select(OrgPreferences).where(OrgPreferences.acting_notices == "daily_digest")
            )
        ).all()
        seller = await _seller_name(session)
        for preferences in due:
            since = preferences.digest_until or preferences.updated_at
            if since > due_before:
                continue
            records = (
                await session.scalars(
                    select(ActingSessionRecord)
                    .where(
                        ActingSessionRecord.subject_org_id == preferences.org_id,
                        ActingSessionRecord.started_at >= since,
                        ActingSessionRecord.started_at < now,
                    )
                    .order_by(ActingSessionRecord.started_at)
                )
            ).all()
            preferences.digest_until = now
            if not records:
                continue
            org = await session.get(Organization, preferences.org_id)
            admins = await active_admins(session, preferences.org_id)
            lines = "\n".join(
                f"- {fmt_time(r.started_at)}: {r.actor_name}, {r.mode} mode"
                + (f", ended ({r.end_reason})" if r.end_reason else "")
                for r in records
            )
            for admin in admins:
                await send_mail(
                    uow,
                    to=admin.email,
                    key="acting_digest",
                    values={
                        "name": admin.name,
                        "seller_name": seller,
                        "org_name": org.name if org else preferences.org_id,
                        "count": str(len(records)),
                        "since": fmt_time(since),
                        "sessions": lines,
                        **_links(settings, preferences.org_id),
                    },
                )
            uow.publish(
                ActingNoticeSent(
                    org_id=preferences.org_id,
                    session_ids=[r.id for r in records],
                    recipients=len(admins),
                    digest=True,
                ),
                EventContext(
                    actor_id="system",
                    actor_org_id="",
                    subject_org_id=preferences.org_id,
                    subject_user_id=None,
                    acting_session_id=None,
                    policy_revision=runtime.authorizer.revision,
                ),
            )
            told += 1
    if told:
        mail_committed(runtime)
    return told


async def digest_loop(runtime: ServiceRuntime) -> None:
    settings = identity_settings(runtime)
    while True:
        await asyncio.sleep(settings.acting_digest_check_seconds)  # a period, not sync
        try:
            await send_digests(runtime)
        except Exception as exc:
            log.warning("acting_digest_failed", error=repr(exc))


def invalid_choice(value: str) -> Invalid:
    return Invalid(f"acting_notices must be every_session, daily_digest or none, not {value!r}")
