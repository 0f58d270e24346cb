"""docs/openapi/*.json is what the services serve: CI fails when someone forgets to export."""

from __future__ import annotations

import re

from onbehalf.openapi_cli import SERVICES, spec_of, stale
from tests.support import Api, World


def test_the_exported_documents_are_current() -> None:
    assert stale() == [], "run: .venv/bin/onbehalf openapi export"


def test_every_operation_declares_its_errors_with_the_one_error_body() -> None:
    for service in SERVICES:
        spec = spec_of(service)
        assert (
            spec["info"]["version"] and "HTTPValidationError" not in spec["components"]["schemas"]
        )
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                # The handler's name, which a generator turns into a method name.
                assert re.fullmatch(r"[a-z][a-z0-9_]*", operation["operationId"])
                assert not operation["operationId"].endswith(f"_{method}"), operation["operationId"]
                for status, response in operation["responses"].items():
                    if status[0] in "45":
                        schema = response["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
                if operation.get("security"):
                    # 503: the database went away under it (libs/common/web.py)
                    assert {"401", "403", "503"} <= set(operation["responses"]), (
                        service,
                        path,
                        method,
                    )


# Error statuses these operations answer, which their OpenAPI once left out: a client generated
# from it would not expect them. Schemathesis found the first; the others came from reading
# which business functions raise Conflict (409) or Gone (410).
ANSWERED = [
    # the last active admin (tests/customers/test_employees_and_notices.py)
    ("identity", "patch", "/v1/orgs/{org_id}/employees/{user_id}", "409"),
    # an open invitation, an address with an account (tests/customers/test_invitations.py)
    ("identity", "post", "/v1/orgs/{org_id}/invitations", "409"),
    # resending or revoking an invitation no longer open (identity/invitations.py)
    ("identity", "post", "/v1/orgs/{org_id}/invitations/{invitation_id}/resend", "409"),
    ("identity", "delete", "/v1/orgs/{org_id}/invitations/{invitation_id}", "409"),
    # the address got an account meanwhile (409); accepted twice, revoked, expired (410,
    # tests/customers/test_invitations.py)
    ("identity", "post", "/v1/invitations/{token}/accept", "409"),
    ("identity", "post", "/v1/invitations/{token}/accept", "410"),
    # a user for an organisation that does not exist (Schemathesis, a long run)
    ("identity", "post", "/v1/users", "404"),
]


def test_the_error_statuses_operations_answer_are_documented() -> None:
    missing = [
        (service, method, path, status)
        for service, method, path, status in ANSWERED
        if status not in spec_of(service)["paths"][path][method]["responses"]
    ]
    assert missing == []


def test_405_names_every_method_of_the_path(anonymous: Api) -> None:
    response = anonymous.request("OPTIONS", "cart", "/v1/cart/lock")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"POST", "DELETE"}
    # A literal path beside a templated one (/v1/budgets/{budget_id}) names only its own.
    response = anonymous.request("OPTIONS", "orders", "/v1/budgets/mine")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_a_wrong_type_never_changes_data(world: World) -> None:
    admin = world.admin
    user = world.customer_user(world.org_a, ["buyer"])
    refused = admin.patch("identity", f"/v1/users/{user['id']}", json={"active": 0})
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"][-1] == "active"
    assert world.admin.login(user["email"]).token  # still active
    until = admin.get("audit", "/v1/audit/events", params={"until": "0.5"})
    assert until.status_code == 422 and "until" in until.json()["detail"]
