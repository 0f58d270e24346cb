"""Audit's HTTP routes: thin; who may read is decided by the policy."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from libs.common.params import Timestamp
from libs.common.web import CurrentPrincipal, Runtime, problems
from services.audit import checkpoints, provenance, service
from services.audit.provenance import event_keys
from services.audit.schemas import AuditPage, CheckpointRead, FindingPage, VerifyRead

router = APIRouter(tags=["audit"])


CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
_CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A stored event exactly as its emitter signed it: CloudEvents 1.0 JSON "
    "with the extension attributes of docs/events.md and the signature (signature, signaturekid)",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {"type": "string"},
        "source": {"type": "string", "format": "uri-reference"},
        "type": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string"},
        "data": {},
    },
    "additionalProperties": True,
}
_CHAIN_HEADERS = {
    "Audit-Chain-Prev-Hash": {
        "description": "The chain hash before the page's oldest record (a page in chain order)",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
    "Audit-Chain-Head": {
        "description": "The chain hash after the page's newest record",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
    "Link": {"description": 'The next page: `<...>; rel="next"`', "schema": {"type": "string"}},
}


def _wants_cloudevents(request: Request, format: str) -> bool:
    return format == "cloudevents" or CLOUDEVENTS_BATCH in request.headers.get("accept", "")


@router.get(
    "/v1/audit/events",
    response_model=AuditPage,
    responses={
        200: {
            "description": "A page of events: the friendly projection (application/json) or, "
            f"with `format=cloudevents` or `Accept: {CLOUDEVENTS_BATCH}`, the stored "
            "CloudEvents exactly as emitted, from which anyone recomputes the chain",
            "content": {
                CLOUDEVENTS_BATCH: {"schema": {"type": "array", "items": _CLOUDEVENT_SCHEMA}}
            },
            "headers": _CHAIN_HEADERS,
        }
    },
)
async def list_events(
    principal: CurrentPrincipal,
    runtime: Runtime,
    request: Request,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    subject_org_id: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32, pattern="^[0-9]+$")] = None,
    order: Literal["desc", "asc"] = "desc",
    format: Literal["json", "cloudevents"] = "json",
) -> AuditPage | Response:
    filters = service.Filters(
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
    if not _wants_cloudevents(request, format):
        return await service.query(runtime=runtime, principal=principal, filters=filters)
    batch = await service.query_cloudevents(runtime=runtime, principal=principal, filters=filters)
    headers = {}
    if batch.prev_hash and batch.head:
        headers = {"Audit-Chain-Prev-Hash": batch.prev_hash, "Audit-Chain-Head": batch.head}
    if batch.next_cursor:
        headers["Link"] = (
            f'<{request.url.include_query_params(cursor=batch.next_cursor)}>; rel="next"'
        )
    return Response(batch.body, media_type=CLOUDEVENTS_BATCH, headers=headers)


@router.get("/v1/audit/verify")
async def verify(
    principal: CurrentPrincipal,
    runtime: Runtime,
    anchor: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> VerifyRead:
    """Recompute the chain and every record's signature, hold it against the latest signed
    checkpoint; with `anchor` (a head noted earlier) also prove it is still in it."""
    return await service.verify(
        runtime=runtime, principal=principal, keys=event_keys(runtime), anchor=anchor
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
async def checkpoint(principal: CurrentPrincipal, runtime: Runtime) -> CheckpointRead:
    """Sign the current chain head now and publish it (stream and file)."""
    return await checkpoints.checkpoint_now(
        runtime=runtime, keys=event_keys(runtime), principal=principal
    )
