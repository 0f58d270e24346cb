"""Schemathesis against every service of the running stack, as admin, buyer, acting staff and
reviewer, with realistic values: every phase but stateful, every check, bounded; 0 failures."""

from __future__ import annotations

import os
from typing import Any

from tests.contract import fuzz
from tests.support import Api, World, ok, security_reviewer, unique

SERVICES = ["identity", "catalog", "cart", "orders", "audit"]
# Bounded so the whole run stays within about two and a half minutes on two cores.
MAX_EXAMPLES = int(os.environ.get("ONBEHALF_FUZZ_EXAMPLES", "8"))
MAX_SECONDS = int(os.environ.get("ONBEHALF_FUZZ_SECONDS", "6"))

# Operations that end the caller's own login or acting session, or change its password:
# fuzzing them would turn the rest of the run into 401s. Their contract is tested in
# tests/identity; everything else runs.
SELF_ENDING = ["logout", "stop_acting", "switch_acting", "replace_password", "change_password"]


def _callers(world: World) -> dict[str, Api]:
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    return {
        "admin": world.admin,
        "buyer": world.login(world.buyer_a),
        "acting": acting,
        "reviewer": security_reviewer(world.admin),
    }


def _values(world: World) -> dict[str, dict[str, Any]]:
    """Realistic path values per service: identity's point at a throwaway organisation and
    user (an admin's fuzzed PATCH may deactivate them); the others at the world's customer."""
    admin = world.admin
    spare_org = ok(
        admin.post(
            "identity",
            "/v1/orgs",
            json={"name": unique("Spare"), "contract_number": unique("C"), "country": "FR"},
        ),
        201,
    )
    spare_user = world.customer_user(spare_org, ["buyer"])
    buyer = world.login(world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    listed = ok(buyer.post("cart", "/v1/saved-lists", json={"name": unique("List")}), 201)
    order = ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("key")}), 201)
    customer = {"path.org_id": world.org_a["id"], "path.sku": world.skus[0]}
    return {
        "identity": {
            "path.org_id": spare_org["id"],
            "path.user_id": spare_user["id"],
            "query.customer_org_id": world.org_a["id"],
        },
        "catalog": customer,
        "cart": {**customer, "path.list_id": listed["id"]},
        "orders": {"path.order_id": order["id"]},
        "audit": {"query.subject_org_id": world.org_a["id"]},
    }


def test_every_service_meets_its_openapi(world: World) -> None:
    callers = _callers(world)
    values = _values(world)
    outcomes = [
        fuzz.run(
            f"{service}/{role}",
            world.admin.stack.url(service) + "/openapi.json",
            token=api.token,
            parameters=values[service],
            exclude=SELF_ENDING,
            max_examples=MAX_EXAMPLES,
            max_time=MAX_SECONDS,
        )
        for service in SERVICES
        for role, api in callers.items()
    ]
    report = fuzz.summary(outcomes)
    print("\n" + report)
    problems = [line for o in outcomes for line in (*o.examples, *o.errors)]
    assert all(o.ok for o in outcomes), report + "\n" + "\n".join(problems)
