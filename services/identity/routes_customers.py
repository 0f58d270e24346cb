"""Identity's routes for a customer organisation's own people: invitations, employees, how
its admins hear of acting sessions, and the mail templates (thin; decisions in the modules
and the policy)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status

from libs.common.paging import CursorQuery
from libs.common.web import CurrentPrincipal, Runtime, problems
from services.identity import (
    acting_notices,
    employees,
    invitation_accept,
    invitations,
)
from services.identity import mail_templates as templates
from services.identity.schemas import (
    PEOPLE_PAGE_DEFAULT,
    PEOPLE_PAGE_MAX,
    ActingNoticesUpdate,
    EmployeeUpdate,
    InvitationAccept,
    InvitationBatch,
    InvitationCreate,
    MailTemplateUpdate,
    TokenRead,
)

router = APIRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]
Token = Annotated[str, Path(min_length=16, max_length=200)]


def _api_base(request: Request) -> str:
    return str(request.base_url)


@router.post("/v1/orgs/{org_id}/invitations", tags=["invitations"], responses=problems(409))
async def invite(
    org_id: Id,
    body: InvitationCreate | InvitationBatch,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> dict[str, Any]:
    """One contact (201 with the invitation; 409 if the address is one of the organisation's
    users or has its open invitation, anyone's for a platform admin; another organisation's
    address is answered like a new one, never sent) or `{items: [...]}` (200, each item
    invited or refused with its reason)."""
    if isinstance(body, InvitationBatch):
        results = await invitations.invite_many(
            runtime=runtime,
            principal=principal,
            org_id=org_id,
            items=[(item.email, item.name, item.roles) for item in body.items],
            api_base=_api_base(request),
        )
        return {"items": results}
    response.status_code = status.HTTP_201_CREATED
    return await invitations.invite_one(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        email=body.email,
        name=body.name,
        roles=body.roles,
        api_base=_api_base(request),
    )


@router.get("/v1/orgs/{org_id}/invitations", tags=["invitations"])
async def list_invitations(
    org_id: Id,
    principal: CurrentPrincipal,
    runtime: Runtime,
    status_filter: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=PEOPLE_PAGE_MAX)] = PEOPLE_PAGE_DEFAULT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    """Newest first, a page at a time (`items`, `next_cursor`)."""
    return await invitations.list_invitations(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        status=status_filter,
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/v1/orgs/{org_id}/invitations/{invitation_id}/resend",
    tags=["invitations"],
    responses=problems(409),
)
async def resend_invitation(
    org_id: Id, invitation_id: Id, request: Request, principal: CurrentPrincipal, runtime: Runtime
) -> dict[str, Any]:
    return await invitations.resend(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        invitation_id=invitation_id,
        api_base=_api_base(request),
    )


@router.delete(
    "/v1/orgs/{org_id}/invitations/{invitation_id}", tags=["invitations"], responses=problems(409)
)
async def revoke_invitation(
    org_id: Id, invitation_id: Id, principal: CurrentPrincipal, runtime: Runtime
) -> dict[str, Any]:
    return await invitations.revoke(
        runtime=runtime, principal=principal, org_id=org_id, invitation_id=invitation_id
    )


@router.post("/v1/invitations/{token}/accept", tags=["invitations"], responses=problems(409, 410))
async def accept_invitation(token: Token, body: InvitationAccept, runtime: Runtime) -> TokenRead:
    """No bearer token: the invitation's token is the credential. 410 once it expired."""
    return await invitation_accept.accept(runtime=runtime, token=token, password=body.password)


@router.get("/v1/orgs/{org_id}/employees", tags=["employees"])
async def list_employees(
    org_id: Id,
    principal: CurrentPrincipal,
    runtime: Runtime,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=PEOPLE_PAGE_MAX)] = PEOPLE_PAGE_DEFAULT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    """By name, a page at a time (`items`, `next_cursor`)."""
    return await employees.list_employees(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        active=active,
        limit=limit,
        cursor=cursor,
    )


@router.patch("/v1/orgs/{org_id}/employees/{user_id}", tags=["employees"], responses=problems(409))
async def update_employee(
    org_id: Id, user_id: Id, body: EmployeeUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> dict[str, Any]:
    return await employees.update_employee(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        user_id=user_id,
        roles=body.roles,
        active=body.active,
    )


@router.get("/v1/orgs/{org_id}/acting-notices", tags=["self"])
async def read_acting_notices(
    org_id: Id, principal: CurrentPrincipal, runtime: Runtime
) -> dict[str, Any]:
    choice = await acting_notices.read_notices(runtime=runtime, principal=principal, org_id=org_id)
    return {"org_id": org_id, "acting_notices": choice}


@router.put("/v1/orgs/{org_id}/acting-notices", tags=["self"])
async def set_acting_notices(
    org_id: Id, body: ActingNoticesUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> dict[str, Any]:
    """How the organisation's admins hear that staff acted for it: every_session (default),
    daily_digest or none."""
    choice = await acting_notices.set_notices(
        runtime=runtime, principal=principal, org_id=org_id, choice=body.acting_notices
    )
    return {"org_id": org_id, "acting_notices": choice}


@router.get("/v1/mail-templates", tags=["administration"])
async def mail_templates(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, Any]:
    items = await templates.read_templates(runtime=runtime, principal=principal)
    return {"items": items}


@router.put("/v1/mail-templates/{key}", tags=["administration"])
async def set_mail_template(
    key: Id, body: MailTemplateUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> dict[str, Any]:
    return await templates.set_template(
        runtime=runtime,
        principal=principal,
        key=key,
        subject=body.subject,
        body=body.body,
    )
