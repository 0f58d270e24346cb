"""What identity builds at start-up beyond the shared runtime (token signer, password pool,
login gate, mail relay), hung on the runtime and reached through one typed accessor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from libs.common.mail import MailRelay
from libs.common.runtime import ServiceRuntime
from services.identity.passwords import AddressGate, PasswordPool

if TYPE_CHECKING:
    # keys.py reaches its signer through identity_parts: imported for the annotation only.
    from services.identity.keys import Signer


@dataclass
class IdentityParts:
    """Built once by app.py; every route and business function still takes only the runtime."""

    signer: Signer
    # scrypt off the event loop, on a few threads (login, user creation, password change).
    passwords: PasswordPool
    # Login attempts one at a time per client address (login.py).
    login_gate: AddressGate
    # The mail outbox's sender: told after a commit that staged mail, so it goes out at once.
    mail: MailRelay


def identity_parts(runtime: ServiceRuntime) -> IdentityParts:
    return runtime.parts_as(IdentityParts)


def mail_committed(runtime: ServiceRuntime) -> None:
    """After a commit that staged mail: send it now rather than at the next poll."""
    identity_parts(runtime).mail.notify()
