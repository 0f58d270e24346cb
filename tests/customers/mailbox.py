"""Reading the development SMTP sink of a test stack: what identity mailed, to whom."""

from __future__ import annotations

import re
from typing import Any

from onbehalf.mail_sink import stored_messages, summary
from onbehalf.stack import Stack
from tests.support import wait_until


def mails(stack: Stack, to: str, kind: str | None = None) -> list[dict[str, Any]]:
    assert stack.mail is not None, "the test stack starts the mail sink"
    found = [summary(path) for path in stored_messages(stack.mail.folder)]
    return [
        m for m in found if to.lower() in m["to"].lower() and (kind is None or m["kind"] == kind)
    ]


def wait_for_mail(
    stack: Stack, to: str, kind: str, *, count: int = 1, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The mails of `kind` to `to`, once there are at least `count` of them."""

    def arrived() -> list[dict[str, Any]] | None:
        found = mails(stack, to, kind)
        return found if len(found) >= count else None

    return wait_until(arrived, timeout=timeout, what=f"{count} {kind} mail(s) to {to}")


def invitation_token(mail: dict[str, Any]) -> str:
    found = re.search(r"/v1/invitations/([A-Za-z0-9_-]+)/accept", mail["body"])
    assert found, mail["body"]
    return found.group(1)
