"""Audit's HTTP routes: thin; who may read is decided by the policy."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from libs.common.params import Timestamp
from libs.common.signing import EventPublicKey
from libs.common.web import CurrentPrincipal, Runtime, problems
from services.audit import checkpoints, provenance, service
from services.audit.schemas import AuditPage, CheckpointRead, FindingPage, VerifyRead
from services.audit.settings import AuditSettings

router = APIRouter(tags=["audit"])


def event_keys(request: Request) -> dict[str, EventPublicKey]:
    keys: dict[str, EventPublicKey] = request.app.state.event_keys
    return keys


@router.get("/v1/audit/events")
async def list_events(
    principal: CurrentPrincipal,
    runtime: Runtime,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    subject_org_id: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
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
    request: Request,
    anchor: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> VerifyRead:
    """Recompute the chain and every record's signature, hold it against the latest signed
    checkpoint; with `anchor` (a head noted earlier) also prove it is still in it."""
    return await service.verify(
        runtime=runtime, principal=principal, keys=event_keys(request), anchor=anchor
    )


@router.get("/v1/audit/findings")
async def list_findings(
    principal: CurrentPrincipal,
    runtime: Runtime,
    since: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> FindingPage:
    """Events refused because they did not prove who emitted them, newest first."""
    return await provenance.list_findings(
        runtime=runtime, principal=principal, since=since, limit=limit, cursor=cursor
    )


@router.post("/v1/audit/checkpoints", status_code=201, responses=problems(409))
async def checkpoint(
    principal: CurrentPrincipal, runtime: Runtime, request: Request
) -> CheckpointRead:
    """Sign the current chain head now and publish it (stream and file)."""
    settings: AuditSettings = request.app.state.audit_settings
    return await checkpoints.checkpoint_now(
        runtime=runtime, settings=settings, keys=event_keys(request), principal=principal
    )
