"""Identity's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

STAFF_ROLES = {"sales_rep", "csr", "csr_supervisor", "platform_admin", "security_reviewer"}
CUSTOMER_ROLES = {"admin", "buyer", "viewer"}
# Page sizes (`?limit=`) of an organisation's employees and invitations: default and most.
PEOPLE_PAGE_DEFAULT = 100
PEOPLE_PAGE_MAX = 500
STAFF_PERMISSIONS = {"place_orders_as_customer", "view_as_customer"}

Mode = Literal["full", "view"]


class Strict(BaseModel):
    # Unknown fields are refused: a typo must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class PartyRead(BaseModel):
    id: str
    name: str


class SubjectRead(BaseModel):
    org_id: str
    name: str


class ActingContextRead(BaseModel):
    """Everything the "Acting as <customer>" badge needs."""

    session_id: str
    mode: Mode
    expires_at: datetime
    actor: PartyRead
    subject: SubjectRead


class ActingStarted(ActingContextRead):
    access_token: str
    token_type: str = "Bearer"
    issued_token_type: str = "urn:ietf:params:oauth:token-type:access_token"


class ActingCreate(Strict):
    customer_org_id: str = Field(min_length=1, max_length=64)
    mode: Mode = "full"


class MeRead(BaseModel):
    id: str
    email: str
    name: str
    kind: Literal["staff", "customer"]
    org_id: str
    roles: list[str]
    permissions: list[str]
    acting_as: ActingContextRead | None = None


class CustomerRead(BaseModel):
    id: str
    name: str
    contract_number: str
    country: str
    status: str
    # The acting modes the policy allows the caller for this organisation at the time of
    # the answer (a later POST /v1/acting-as is decided afresh).
    modes: list[Mode] = Field(default_factory=list)


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None


def _country(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("country must be a two-letter ISO 3166 code")
    return value.upper()


class OrgCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    contract_number: str = Field(min_length=1, max_length=64)
    country: str
    allow_assistance: StrictBool = True

    _check_country = field_validator("country")(_country)


class OrgUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    contract_number: str | None = Field(default=None, min_length=1, max_length=64)
    country: str | None = None
    status: Literal["active", "obsolete"] | None = None
    allow_assistance: StrictBool | None = None

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str | None) -> str | None:
        return None if value is None else _country(value)


class OrgRead(BaseModel):
    id: str
    name: str
    contract_number: str
    country: str
    status: str
    allow_assistance: bool
    is_seller: bool


class UserCreate(Strict):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=1024)
    kind: Literal["staff", "customer"]
    org_id: str | None = None
    roles: list[str] = Field(default_factory=list)
    permissions: list[str] = Field(default_factory=list)


class UserUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    roles: list[str] | None = None
    permissions: list[str] | None = None
    active: StrictBool | None = None  # never 0/1: a wrong type must not deactivate


class UserRead(BaseModel):
    id: str
    email: str
    name: str
    kind: str
    org_id: str
    roles: list[str]
    permissions: list[str]
    active: bool


class ConsentUpdate(Strict):
    allow_assistance: StrictBool  # never 0/1 or "no": a wrong type must not change consent


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class ActingSessionRead(BaseModel):
    """One acting session on an organisation, for its admins: who, when, how, how it ended."""

    session_id: str
    actor: PartyRead
    subject: SubjectRead
    mode: Mode
    started_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    end_detail: str | None


class ActingSessionPage(BaseModel):
    items: list[ActingSessionRead]
    next_cursor: str | None


# ---------------------------------------------------------------- customer organisations' people
# (invitations.py, employees.py, acting_notices.py)


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=3)


class InvitationBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[InvitationCreate] = Field(min_length=1, max_length=200)


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=200)


class EmployeeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = Field(default=None, min_length=1, max_length=3)
    active: StrictBool | None = None


class ActingNoticesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    acting_notices: Literal["every_session", "daily_digest", "none"]


class MailTemplateUpdate(BaseModel):
    """Both absent (or null): the built-in text again."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=300)
    body: str | None = Field(default=None, min_length=1, max_length=20_000)
