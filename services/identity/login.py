"""Login that resists guessing: throttling per account and address, fair and bounded hashing.

Guesses from many addresses at once against one account may overshoot its limit by about
the number of those addresses (each is checked before its hash); one address cannot."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from libs.common.errors import TooManyRequests, Unauthenticated
from libs.common.runtime import ServiceRuntime
from services.identity import events
from services.identity.login_tokens import (
    NOT_ACTIVE,
    attempt_context,
    issue_login_token,
    not_active,
)
from services.identity.models import LoginFailure, Organization, User
from services.identity.parts import identity_parts
from services.identity.schemas import TokenRead
from services.identity.settings import identity_settings

WRONG = "wrong email or password"


async def _retry_after(
    session: AsyncSession,
    match: ColumnElement[bool],
    *,
    since: datetime,
    limit: int,
    window: int,
) -> int | None:
    """Seconds until fewer than `limit` failures remain in the window, or None if already so."""
    where = (match, LoginFailure.at > since)
    count = await session.scalar(select(func.count()).select_from(LoginFailure).where(*where))
    if not count or count < limit:
        return None
    # The window drops below the limit when the (count - limit + 1)-th oldest failure leaves it.
    pivot = await session.scalar(
        select(LoginFailure.at).where(*where).order_by(LoginFailure.at).offset(count - limit)
    )
    assert pivot is not None
    left = (pivot + timedelta(seconds=window) - datetime.now(UTC)).total_seconds()
    return max(1, math.ceil(left))


async def _throttled(runtime: ServiceRuntime, *, account: str, address: str) -> None:
    """Refuse (429; audited once per burst) when the account or the address failed too often. A read:
    a legitimate login writes nothing, so it never queues behind a flood's writes."""
    settings = identity_settings(runtime)
    window = settings.login_window_seconds
    since = datetime.now(UTC) - timedelta(seconds=window)
    found: tuple[str, int] | None = None
    async with runtime.reading() as session:
        for name, match, limit in (
            ("account", LoginFailure.account == account, settings.login_max_failures_per_account),
            ("address", LoginFailure.address == address, settings.login_max_failures_per_address),
        ):
            wait = await _retry_after(session, match, since=since, limit=limit, window=window)
            if wait is not None:
                found = (name, wait)
                break
    if found is None:
        return
    scope, wait = found
    key = f"{scope}:{account if scope == 'account' else address}"
    if identity_parts(runtime).login_gate.report_due(key, quiet_seconds=min(wait, 60)):
        await _report_throttled(runtime, account=account, address=address, scope=scope, wait=wait)
    raise TooManyRequests(
        f"too many failed logins for this {scope}; try again in {wait} s",
        reason="login_throttled",
        retry_after=wait,
    )


async def _report_throttled(
    runtime: ServiceRuntime, *, account: str, address: str, scope: str, wait: int
) -> None:
    async with runtime.unit_of_work() as uow:
        user = await uow.session.scalar(select(User).where(User.email == account))
        uow.publish(
            events.LoginThrottled(email=account, address=address, scope=scope, retry_after=wait),
            attempt_context(runtime, user),
        )


async def _failed(
    runtime: ServiceRuntime, *, account: str, address: str, user: User | None, why: str
) -> None:
    """Count the failure and audit it."""
    now = datetime.now(UTC)
    since = now - timedelta(seconds=identity_settings(runtime).login_window_seconds)
    async with runtime.unit_of_work() as uow:
        # Old failures no longer count for anything.
        await uow.session.execute(delete(LoginFailure).where(LoginFailure.at <= since))
        uow.session.add(LoginFailure(id=str(uuid4()), account=account, address=address, at=now))
        uow.publish(
            events.LoginFailed(email=account, address=address, reason=why),
            attempt_context(runtime, user),
        )


async def _succeeded(runtime: ServiceRuntime, *, account: str) -> None:
    """The owner proved the password: their account's earlier failures are forgiven (the
    address's are not)."""
    async with runtime.reading() as session:
        earlier = await session.scalar(
            select(LoginFailure.id).where(LoginFailure.account == account).limit(1)
        )
    if earlier is None:
        return
    async with runtime.unit_of_work() as uow:
        await uow.session.execute(delete(LoginFailure).where(LoginFailure.account == account))


async def login(*, runtime: ServiceRuntime, email: str, password: str, address: str) -> TokenRead:
    """Logins beyond a few in flight per address never get here (login_guard.LoginBurstGuard);
    those that do run one at a time per address, so a flood from one address queues behind
    itself and a login from anywhere else waits for at most one of its attempts."""
    account = email.strip().lower()
    parts = identity_parts(runtime)
    async with parts.login_gate.turn(address):
        # Attempts from one address run one at a time: the failure count read here is exact.
        await _throttled(runtime, account=account, address=address)
        async with runtime.reading() as session:
            user = await session.scalar(select(User).where(User.email == account))
            org = await session.get(Organization, user.org_id) if user else None
        pool = parts.passwords
        if user is None:
            # No CPU spent on an account that does not exist, but the same time as a real check.
            await asyncio.sleep(pool.mean_seconds * random.uniform(0.9, 1.3))
            correct = False
        else:
            correct = await pool.verify(password, user.password_hash)
        if not correct:
            # Counted before the address's next attempt is let through.
            await _failed(
                runtime, account=account, address=address, user=user, why="wrong_password"
            )
            raise Unauthenticated(WRONG)
    await _succeeded(runtime, account=account)
    assert user is not None
    why = not_active(user, org)
    if why is not None or org is None:
        raise Unauthenticated(NOT_ACTIVE[why or "organisation_inactive"])
    return await issue_login_token(runtime=runtime, user=user, org=org)
