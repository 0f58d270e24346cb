"""The record of acting sessions: an organisation's, for its admins (transparency), and one's
own ended session, for the staff member it ended on."""

from __future__ import annotations

from sqlalchemy import or_, select

from libs.common.errors import NotFound
from libs.common.paging import decode_time_cursor, page_of
from libs.common.principals import ActingSession, Principal
from libs.common.runtime import ServiceRuntime
from services.identity.acting_sessions import subject_org
from services.identity.models import ActingSessionRecord
from services.identity.org_people import fresh_caller as _fresh
from services.identity.org_people import policy_org as _policy_org
from services.identity.schemas import ActingSessionPage, ActingSessionRead, PartyRead, SubjectRead


def _session_read(record: ActingSessionRecord) -> ActingSessionRead:
    return ActingSessionRead(
        session_id=record.id,
        actor=PartyRead(id=record.actor_id, name=record.actor_name),
        subject=SubjectRead(org_id=record.subject_org_id, name=record.subject_name),
        mode="full" if record.mode == "full" else "view",
        started_at=record.started_at,
        expires_at=record.expires_at,
        last_seen_at=record.last_seen_at,
        ended_at=record.ended_at,
        end_reason=record.end_reason,
        end_detail=record.end_detail,
    )


async def list_acting_sessions(
    *, runtime: ServiceRuntime, principal: Principal, org_id: str, limit: int, cursor: str | None
) -> ActingSessionPage:
    """Transparency: an organisation's admins see every session staff held on it."""
    async with runtime.reading() as session:
        caller = await _fresh(session, principal)
        org = await subject_org(session, org_id)
        runtime.authorizer.authorize(
            caller, "read_acting_sessions", await _policy_org(session, org)
        )
        query = select(ActingSessionRecord).where(ActingSessionRecord.subject_org_id == org_id)
        if cursor:
            after, session_id = decode_time_cursor(cursor)
            query = query.where(
                or_(
                    ActingSessionRecord.started_at < after,
                    (ActingSessionRecord.started_at == after)
                    & (ActingSessionRecord.id < session_id),
                )
            )
        records = (
            await session.scalars(
                query.order_by(
                    ActingSessionRecord.started_at.desc(), ActingSessionRecord.id.desc()
                ).limit(limit + 1)
            )
        ).all()
    page, next_cursor = page_of(
        records, limit=limit, key=lambda r: (r.started_at.isoformat(), r.id)
    )
    return ActingSessionPage(items=[_session_read(r) for r in page], next_cursor=next_cursor)


async def own_acting_session(
    *, runtime: ServiceRuntime, principal: Principal, session_id: str
) -> ActingSessionRead:
    """One acting session the caller held, as they themselves signed in (not acting): how and
    why it ended, for the page that tells them. Anyone else's session is 404, as if absent."""
    if isinstance(principal, ActingSession):
        raise NotFound(f"acting session {session_id} not found")
    async with runtime.reading() as session:
        record = await session.get(ActingSessionRecord, session_id)
    if record is None or record.actor_id != principal.id:
        raise NotFound(f"acting session {session_id} not found")
    return _session_read(record)
