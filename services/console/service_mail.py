"""The calls behind the Mail templates page (platform admins): identity's mail texts.

Like service.py: the person's own token, no decision here; a refusal is a ServiceError with
the service's `detail` and the policy's `reason`.
"""

from __future__ import annotations

from typing import Any

from services.console.service import Services, call


async def mail_templates(services: Services, *, token: str) -> list[dict[str, Any]]:
    body = await call(services, "GET", "identity", "/v1/mail-templates", token=token)
    return list(body["items"])


async def set_mail_template(
    services: Services, *, token: str, key: str, change: dict[str, str]
) -> dict[str, Any]:
    """`{subject, body}` changes the text; `{}` puts the built-in text back."""
    path = f"/v1/mail-templates/{key}"
    return dict(await call(services, "PUT", "identity", path, token=token, json=change))
