"""Identity's mail texts: the built-in templates, a platform admin's replacements of them, and
staging a mail from one in a change's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound
from libs.common.mail import render, stage_mail
from libs.common.principals import Principal
from libs.common.resources import Administration
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.customers import MailTemplateChanged
from services.identity.models import MailOutbox, MailTemplate

MAIL_ADMINISTRATION = Administration(area="mail")


@dataclass(frozen=True)
class Template:
    subject: str
    body: str
    placeholders: tuple[str, ...]


DEFAULT_TEMPLATES: dict[str, Template] = {
    "invitation": Template(
        subject="$inviter_name invites you to $org_name",
        body=(
            "Hello $name,\n\n"
            "$inviter_name invites you to use the shop of $org_name as $roles.\n"
            "Choose your password and sign in here (this link works once, until $expires_at):\n\n"
            "$link\n\n"
            'Or with the API: POST $accept_url with {"password": "..."}.\n'
            "If you did not expect this, ignore this mail.\n"
        ),
        placeholders=(
            "name",
            "inviter_name",
            "org_name",
            "roles",
            "expires_at",
            "link",
            "accept_url",
        ),
    ),
    "invitation_expired": Template(
        subject="$email tried to accept an expired invitation to $org_name",
        body=(
            "Hello $inviter_name,\n\n"
            "$email tried to accept your invitation to $org_name, which expired on "
            "$expired_at.\nResend it to give them another seven days.\n"
        ),
        placeholders=("inviter_name", "email", "org_name", "expired_at"),
    ),
    "invitation_elsewhere": Template(
        subject="Someone at $org_name tried to invite you",
        body=(
            "Hello,\n\n"
            "$inviter_name of $org_name tried to invite $email to their shop. This address "
            "already has an account with us, or an open invitation from another company, so "
            "no invitation was sent and nothing changed for you.\n"
            "If you expected it, tell $inviter_name that one address belongs to one company "
            "and to invite another address of yours. If you did not, ignore this mail.\n"
        ),
        placeholders=("email", "inviter_name", "org_name"),
    ),
    "acting_notice": Template(
        subject="$actor_name acted on behalf of $org_name",
        body=(
            "Hello $name,\n\n"
            "$actor_name of $seller_name started a $mode acting session on behalf of "
            "$org_name at $started_at (session $session_id).\n"
            "$mode_explained\n\n"
            "Every acting session is listed under Remote assistance: $assistance_url\n"
            "To withdraw your consent to remote assistance (which ends every acting session "
            "at once), switch it off there, or PUT $consent_url with "
            '{"allow_assistance": false}.\n'
        ),
        placeholders=(
            "name",
            "actor_name",
            "seller_name",
            "org_name",
            "mode",
            "mode_explained",
            "started_at",
            "session_id",
            "assistance_url",
            "consent_url",
        ),
    ),
    "acting_digest": Template(
        subject="Acting sessions on behalf of $org_name: $count since $since",
        body=(
            "Hello $name,\n\n"
            "Staff of $seller_name acted on behalf of $org_name $count time(s) since $since:\n\n"
            "$sessions\n\n"
            "Every acting session is listed under Remote assistance: $assistance_url\n"
            "To withdraw your consent to remote assistance, switch it off there, or PUT "
            '$consent_url with {"allow_assistance": false}.\n'
        ),
        placeholders=(
            "name",
            "seller_name",
            "org_name",
            "count",
            "since",
            "sessions",
            "assistance_url",
            "consent_url",
        ),
    ),
    "approval_request": Template(
        subject="An order of $total $currency by $placed_by awaits your approval",
        body=(
            "Hello $name,\n\n"
            "$placed_by placed an order of $total $currency for $org_name at $placed_at "
            "(order $order_id).\n"
            "It exceeds its budget for $period_key ($remaining $currency left), which asks an "
            "admin to approve such orders; it waits until one of you decides.\n\n"
            "Approve or reject it here: $approvals_url\n"
            "Or with the API: POST $approve_url (or .../reject).\n"
        ),
        placeholders=(
            "name",
            "placed_by",
            "org_name",
            "total",
            "currency",
            "placed_at",
            "order_id",
            "period_key",
            "remaining",
            "approvals_url",
            "approve_url",
        ),
    ),
}


async def template(session: AsyncSession, key: str) -> tuple[str, str]:
    stored = await session.get(MailTemplate, key)
    if stored is not None:
        return stored.subject, stored.body
    default = DEFAULT_TEMPLATES[key]
    return default.subject, default.body


async def send_mail(uow: UnitOfWork, *, to: str, key: str, values: dict[str, str]) -> str:
    """Stage the mail `key` to `to` in the unit of work; it goes out only if that commits."""
    subject, body = await template(uow.session, key)
    return stage_mail(
        uow.session,
        MailOutbox,
        to=to,
        subject=render(subject, values),
        body=render(body, values),
        kind=key,
    )


def fmt_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- changing them (platform admins)


def _known(key: str) -> Template:
    if key not in DEFAULT_TEMPLATES:
        raise NotFound(f"no mail template {key!r}; known: {', '.join(sorted(DEFAULT_TEMPLATES))}")
    return DEFAULT_TEMPLATES[key]


async def read_templates(
    *, runtime: ServiceRuntime, principal: Principal
) -> list[dict[str, object]]:
    runtime.authorizer.authorize(principal, "manage", MAIL_ADMINISTRATION)
    async with runtime.reading() as session:
        found = []
        for key, default in sorted(DEFAULT_TEMPLATES.items()):
            subject, body = await template(session, key)
            found.append(
                {
                    "key": key,
                    "subject": subject,
                    "body": body,
                    "placeholders": list(default.placeholders),
                    "customised": await session.get(MailTemplate, key) is not None,
                }
            )
    return found


async def set_template(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    key: str,
    subject: str | None,
    body: str | None,
) -> dict[str, object]:
    """Change a template's text; both None puts the built-in text back."""
    default = _known(key)
    runtime.authorizer.authorize(principal, "manage", MAIL_ADMINISTRATION)
    async with runtime.unit_of_work() as uow:
        stored = await uow.session.get(MailTemplate, key)
        reset = subject is None and body is None
        if reset:
            if stored is not None:
                await uow.session.delete(stored)
        else:
            if stored is None:
                stored = MailTemplate(
                    key=key,
                    subject=default.subject,
                    body=default.body,
                    updated_by_id=principal.id,
                )
                uow.session.add(stored)
            stored.subject = subject if subject is not None else stored.subject
            stored.body = body if body is not None else stored.body
            stored.updated_by_id = principal.id
            stored.updated_at = datetime.now(UTC)
        uow.publish(MailTemplateChanged(key=key, reset=reset), principal)
    return {"key": key, "customised": not reset}
