"""Login sessions: a logout ends one, and every acting session started from it."""

from __future__ import annotations

from libs.common.errors import Invalid
from libs.common.principals import Principal, actor_ref
from libs.common.runtime import ServiceRuntime
from services.identity import events
from services.identity.acting_sessions import end_live_sessions


async def logout(*, runtime: ServiceRuntime, principal: Principal) -> None:
    """Every token of the caller's login session (login or acting) is refused everywhere once
    the event is projected into the revocation bucket; other login sessions go on."""
    login_session_id = principal.login_session_id
    if login_session_id is None:
        raise Invalid(
            "this token has no login session to end (it was issued before logout existed)"
        )
    user_id, _ = actor_ref(principal)
    async with runtime.unit_of_work() as uow:
        ended = await end_live_sessions(
            uow,
            reason="logged_out",
            detail="the staff member signed out",
            actor=principal,
            login_session_id=login_session_id,
        )
        uow.publish(
            events.LoginSessionEnded(
                login_session_id=login_session_id,
                user_id=user_id,
                reason="logout",
                acting_sessions_ended=ended,
            ),
            principal,
        )
