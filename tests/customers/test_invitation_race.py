"""Several organisations invite one new address at the same moment: every admin gets the same
answer (201, pending), exactly one invitation is really sent and the others are withheld (the
owner hears of each), never a revealing 409 from the unique index — on SQLite (the session
stack) and on PostgreSQL (identity on a real server, where an advisory lock serialises them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.stacks import stack_on_postgres
from onbehalf.stack import Stack
from tests.cart.people import at_once
from tests.conftest import ADMIN_EMAIL
from tests.customers.mailbox import mails
from tests.support import Api, new_user, ok, unique, wait_until

RACERS = 4


def _race(admin: Api, stack: Stack) -> None:
    admins: list[tuple[Api, str]] = []
    for _ in range(RACERS):
        body = {"name": unique("Racer"), "contract_number": unique("C"), "country": "DE"}
        org = ok(admin.post("identity", "/v1/orgs", json=body), 201)
        user = new_user(admin, kind="customer", roles=["admin"], org_id=org["id"])
        admins.append((admin.login(user["email"]), org["id"]))
    email = unique("wanted") + "@example.test"
    invite = {"json": {"email": email, "name": "Wanted", "roles": ["buyer"]}}
    answers = at_once(
        [
            (api, "POST", "identity", f"/v1/orgs/{org_id}/invitations", invite)
            for api, org_id in admins
        ]
    )
    assert [a.status_code for a in answers] == [201] * RACERS, [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"pending"}

    # Each answered invitation staged exactly one mail in its own transaction (the invitation,
    # or the owner's notice), so once all have arrived there is no other to wait for.
    def all_mailed() -> list[dict[str, Any]] | None:
        found = mails(stack, email)
        return found if len(found) >= RACERS else None

    arrived = wait_until(all_mailed, timeout=15, what=f"{RACERS} mails to {email}")
    kinds = sorted(m["kind"] for m in arrived)
    assert kinds == ["invitation"] + ["invitation_elsewhere"] * (RACERS - 1), kinds


def test_organisations_inviting_one_address_at_once_on_sqlite(admin: Api, stack: Stack) -> None:
    _race(admin, stack)


@pytest.fixture(scope="module")
def pg_identity_stack(
    tmp_path_factory: pytest.TempPathFactory, admin_password: str
) -> Iterator[Stack]:
    with stack_on_postgres(
        tmp_path_factory.mktemp("pg-identity"),
        services=("identity",),
        admin_email=ADMIN_EMAIL,
        admin_password=admin_password,
    ) as stack:
        yield stack


@pytest.mark.postgres
def test_organisations_inviting_one_address_at_once_on_postgres(
    pg_identity_stack: Stack, http: httpx.Client, admin_password: str
) -> None:
    admin = Api(stack=pg_identity_stack, client=http).login(ADMIN_EMAIL, admin_password)
    _race(admin, pg_identity_stack)
