"""A customer organisation's own settings: its consent to remote assistance, read and changed
by its admins (withdrawing it ends every session on the organisation)."""

from __future__ import annotations

from libs.common.principals import Principal
from libs.common.runtime import ServiceRuntime
from services.identity import events
from services.identity.acting_sessions import revoke_no_longer_allowed, subject_org
from services.identity.org_people import fresh_caller as _fresh
from services.identity.org_people import org_read
from services.identity.org_people import policy_org as _policy_org
from services.identity.schemas import OrgRead


async def read_org(*, runtime: ServiceRuntime, principal: Principal, org_id: str) -> OrgRead:
    """An organisation's settings (consent included), for whoever may see its acting sessions:
    its admins, platform admins, security reviewers."""
    async with runtime.reading() as session:
        caller = await _fresh(session, principal)
        org = await subject_org(session, org_id)
        runtime.authorizer.authorize(
            caller, "read_acting_sessions", await _policy_org(session, org)
        )
    return org_read(org)


async def set_consent(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, allow_assistance: bool
) -> OrgRead:
    """Company-level consent to remote assistance: the customer's admin (or a platform admin)
    decides; withdrawing it ends every session on the organisation."""
    async with runtime.unit_of_work() as uow:
        caller = await _fresh(uow.session, principal)
        org = await subject_org(uow.session, org_id)
        runtime.authorizer.authorize(caller, "set_consent", await _policy_org(uow.session, org))
        org.allow_assistance = allow_assistance
        read = org_read(org)
        uow.publish(
            events.ConsentChanged(org_id=org.id, allow_assistance=allow_assistance),
            caller,
            subject_org_id=org.id,
        )
        await revoke_no_longer_allowed(uow, caller=caller, org_id=org.id)
    return read
