"""A user's own preferences: a staff member's default customer after login, and the opt-in to
a personal login link (login_links.py).

`after_login: default_customer` makes every login (password or login link) also start an
acting session for the default customer, decided by the policy at that moment exactly as
`POST /v1/acting-as` would be (and audited the same way, allowed or denied): the login answer
carries the session, or the reason there is none. Switching stays one call
(`POST /v1/acting-as/switch`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from libs.common.clock import utcnow
from libs.common.errors import Forbidden, Invalid, NotFound, Unauthenticated
from libs.common.principals import ActingSession, Principal, StaffUser
from libs.common.resources import Account
from libs.common.runtime import ServiceRuntime
from libs.contracts.identity import PreferencesChanged
from services.identity import acting_sessions
from services.identity.models import Organization, User, UserPreferences
from services.identity.schemas import ActingStarted, Mode, Strict, TokenRead

AfterLogin = Literal["company_selection", "default_customer"]


class PreferencesWrite(Strict):
    """Only the fields sent change; `default_customer_org_id: null` clears the default."""

    default_customer_org_id: str | None = Field(default=None, min_length=1, max_length=64)
    after_login: AfterLogin | None = None
    mode: Mode | None = None
    # "Yes, I want an individual login link".
    login_link: bool | None = None


class PreferencesRead(BaseModel):
    default_customer_org_id: str | None
    after_login: AfterLogin
    mode: Mode
    login_link: bool


class AfterLoginRead(BaseModel):
    """What the login did for the default customer: the acting session, or why there is none."""

    customer_org_id: str
    acting_as: ActingStarted | None
    reason: str | None


class LoginRead(TokenRead):
    # Only for staff whose preference is `after_login: default_customer`.
    after_login: AfterLoginRead | None = None


def _read(prefs: UserPreferences | None) -> PreferencesRead:
    if prefs is None:
        return PreferencesRead(
            default_customer_org_id=None,
            after_login="company_selection",
            mode="full",
            login_link=False,
        )
    return PreferencesRead(
        default_customer_org_id=prefs.default_customer_org_id,
        after_login="default_customer"
        if prefs.after_login == "default_customer"
        else "company_selection",
        mode="view" if prefs.acting_mode == "view" else "full",
        login_link=prefs.login_link_opt_in,
    )


def _account(principal: Principal) -> Account:
    if isinstance(principal, ActingSession):
        # The policy refuses this with its reason: an acting session has no preferences.
        return Account(user_id=principal.actor_id, org_id=principal.actor_org_id)
    return Account(user_id=principal.id, org_id=principal.org_id)


async def get_preferences(*, runtime: ServiceRuntime, principal: Principal) -> PreferencesRead:
    runtime.authorizer.authorize(principal, "set_preferences", _account(principal))
    async with runtime.reading() as session:
        return _read(await session.get(UserPreferences, principal.id))


async def set_preferences(
    *, runtime: ServiceRuntime, principal: Principal, body: PreferencesWrite
) -> PreferencesRead:
    runtime.authorizer.authorize(principal, "set_preferences", _account(principal))
    sent = body.model_fields_set
    async with runtime.unit_of_work() as uow:
        user = await uow.session.get(User, principal.id)
        if user is None:
            raise Unauthenticated("the token's user no longer exists")
        prefs = await uow.session.get(UserPreferences, user.id)
        if prefs is None:
            prefs = UserPreferences(
                user_id=user.id,
                after_login="company_selection",
                acting_mode="full",
                login_link_opt_in=False,
            )
            uow.session.add(prefs)
        if sent & {"default_customer_org_id", "after_login", "mode"} and user.kind != "staff":
            raise Invalid("only staff have a default customer: a customer user sets `login_link`")
        if "default_customer_org_id" in sent:
            org_id = body.default_customer_org_id
            if org_id is not None:
                org = await uow.session.get(Organization, org_id)
                if org is None or org.is_seller:
                    raise Invalid(f"customer organisation {org_id} does not exist")
            prefs.default_customer_org_id = org_id
        if body.after_login is not None:
            prefs.after_login = body.after_login
        if body.mode is not None:
            prefs.acting_mode = body.mode
        if body.login_link is not None:
            prefs.login_link_opt_in = body.login_link
        if prefs.after_login == "default_customer" and prefs.default_customer_org_id is None:
            raise Invalid("`after_login: default_customer` needs a `default_customer_org_id`")
        prefs.updated_at = utcnow()
        read = _read(prefs)
        uow.publish(
            PreferencesChanged(
                user_id=user.id,
                default_customer_org_id=read.default_customer_org_id,
                after_login=read.after_login,
                mode=read.mode,
                login_link=read.login_link,
            ),
            principal,
        )
    return read


async def after_login(*, runtime: ServiceRuntime, issued: TokenRead) -> LoginRead:
    """The login answer; for staff who chose it, with an acting session for their default
    customer when the policy still allows it (or the policy's reason, and no session)."""
    principal = runtime.verifier.verify(issued.access_token)
    answer = LoginRead(**issued.model_dump())
    if not isinstance(principal, StaffUser):
        return answer
    async with runtime.reading() as session:
        prefs = await session.get(UserPreferences, principal.id)
    if (
        prefs is None
        or prefs.after_login != "default_customer"
        or not prefs.default_customer_org_id
    ):
        return answer
    org_id = prefs.default_customer_org_id
    try:
        started = await acting_sessions.start_acting(
            runtime=runtime,
            principal=principal,
            customer_org_id=org_id,
            mode="view" if prefs.acting_mode == "view" else "full",
        )
    except Forbidden as refused:
        answer.after_login = AfterLoginRead(
            customer_org_id=org_id, acting_as=None, reason=refused.reason or refused.detail
        )
    except NotFound:
        answer.after_login = AfterLoginRead(
            customer_org_id=org_id, acting_as=None, reason="the default customer no longer exists"
        )
    else:
        answer.after_login = AfterLoginRead(customer_org_id=org_id, acting_as=started, reason=None)
    return answer
