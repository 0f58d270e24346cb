"""OpenAPI links: the natural flows are declared, every link names an operation of its own
document and parameters that exist, and Schemathesis' stateful phase follows them."""

from __future__ import annotations

import os
import re
from typing import Any

from libs.common.openapi_links import LINKS
from onbehalf.openapi_cli import SERVICES, spec_of
from tests.contract import fuzz
from tests.support import World

# The flows the contract promises a client (issue 12): create -> read, order -> its detail.
FLOWS = {
    ("catalog", "create_product", "list_products"),
    ("orders", "place_order", "get_order"),
    ("identity", "start_acting", "current_acting"),
    ("identity", "invite", "list_invitations"),
    ("identity", "create_org", "read_org"),
    ("cart", "add_item", "get_cart"),
    ("cart", "create_saved_list", "get_saved_list"),
}
# The runtime expressions used: a pointer into the response or request body, or a parameter.
EXPRESSION = re.compile(
    r"^\$((response|request)\.body#(/[A-Za-z0-9_]+)+|request\.(path|query)\.[a-z_]+)$"
)


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in spec["paths"].values()
        for operation in item.values()
    }


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _has_pointer(spec: dict[str, Any], schema: dict[str, Any], pointer: str) -> bool:
    """Whether `pointer` (/a/b) names a property the schema declares, through references."""
    for part in pointer.strip("/").split("/"):
        schema = _resolve(spec, schema)
        if "properties" not in schema and schema.get("additionalProperties") is True:
            return True  # an open object: any name may be there
        if part not in schema.get("properties", {}):
            return False
        schema = schema["properties"][part]
    return True


def _check_expression(
    spec: dict[str, Any], source: dict[str, Any], status: str, expression: str
) -> None:
    assert EXPRESSION.match(expression), expression
    if expression.startswith("$response.body#"):
        content = source["responses"][status]["content"]["application/json"]["schema"]
        assert _has_pointer(spec, content, expression.split("#", 1)[1]), expression
    elif expression.startswith("$request.body#"):
        body = source["requestBody"]["content"]["application/json"]["schema"]
        assert _has_pointer(spec, body, expression.split("#", 1)[1]), expression
    else:
        where, name = expression.removeprefix("$request.").split(".", 1)
        assert {"in": where, "name": name} in [
            {"in": p["in"], "name": p["name"]} for p in source.get("parameters", [])
        ], expression


def test_every_link_names_an_operation_and_parameters_that_exist() -> None:
    found: set[tuple[str, str, str]] = set()
    declared = 0
    for service in SERVICES:
        spec = spec_of(service)
        operations = _operations(spec)
        for source_id, operation in operations.items():
            for status, response in operation["responses"].items():
                for name, link in response.get("links", {}).items():
                    declared += 1
                    assert status.startswith("2"), (service, source_id, status)
                    target = operations.get(link["operationId"])
                    assert target is not None, (service, source_id, name, link["operationId"])
                    params = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
                    required = {
                        f"{p['in']}.{p['name']}"
                        for p in target.get("parameters", [])
                        if p.get("required") and p["in"] == "path"
                    }
                    assert set(link.get("parameters", {})) <= params, (service, name)
                    assert required <= set(link.get("parameters", {})), (service, name)
                    for expression in link.get("parameters", {}).values():
                        _check_expression(spec, operation, status, expression)
                    found.add((service, source_id, link["operationId"]))
    # Every link of the table landed in a document (none silently dropped by a rename).
    assert declared == sum(len(links) for _status, links in LINKS.values())
    assert found >= FLOWS, FLOWS - found


def test_the_exported_documents_carry_the_links() -> None:
    """What a generator reads from docs/openapi is what the services serve (staleness aside)."""
    spec = spec_of("orders")
    placed = spec["paths"]["/v1/orders"]["post"]["responses"]["201"]["links"]["GetOrder"]
    assert placed == {
        "operationId": "get_order",
        "description": "The order's detail",
        "parameters": {"path.order_id": "$response.body#/id"},
    }


# Bounded: the stateful phase of one service, for one caller, within about a minute.
STATEFUL_SECONDS = int(os.environ.get("ONBEHALF_STATEFUL_SECONDS", "30"))


def test_schemathesis_follows_the_links_of_the_cart(world: World) -> None:
    """The stateful phase chains add_item -> get_cart/change_item/remove_item and
    create_saved_list -> get/add/rename, as the customer's buyer; every check, 0 failures."""
    buyer = world.login(world.buyer_a)
    outcome = fuzz.run(
        "cart/buyer stateful",
        buyer.stack.url("cart") + "/openapi.json",
        token=buyer.token,
        parameters={"path.sku": world.skus[0]},
        exclude=[],
        max_examples=4,
        max_time=STATEFUL_SECONDS,
        phases=["stateful"],
    )
    print("\n" + fuzz.summary([outcome]))
    print("links followed: " + ", ".join(f"{k} x{n}" for k, n in sorted(outcome.links.items())))
    problems = [*outcome.examples, *outcome.errors]
    assert outcome.ok, "\n".join(problems)
    assert outcome.by_phase.get("stateful", 0) > 0, outcome
    # Steps that came from a previous response through a declared link, not just generated.
    assert any("GetSavedList" in link or "GetCart" in link for link in outcome.links), outcome
