"""Audit's HTTP routes: thin; who may read is decided by the policy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from libs.common.web import CurrentPrincipal, Runtime
from services.audit import service
from services.audit.schemas import AuditPage, VerifyRead

router = APIRouter(tags=["audit"])


@router.get("/v1/audit/events")
async def list_events(
    principal: CurrentPrincipal,
    runtime: Runtime,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    subject_org_id: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    order: Literal["desc", "asc"] = "desc",
) -> AuditPage:
    return await service.query(
        runtime=runtime,
        principal=principal,
        actor_id=actor_id,
        subject_org_id=subject_org_id,
        type=type,
        session_id=session_id,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
        order=order,
    )


@router.get("/v1/audit/verify")
async def verify(
    principal: CurrentPrincipal,
    runtime: Runtime,
    anchor: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> VerifyRead:
    """Recompute the chain; with `anchor` (a head noted earlier) also prove it is still in it."""
    return await service.verify(runtime=runtime, principal=principal, anchor=anchor)
