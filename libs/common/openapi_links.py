"""OpenAPI links for the natural flows (create -> read, order -> its detail), added to each spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    """What a client (or Schemathesis' stateful phase) can call next with what it got back:
    `parameters` maps the target's `in.name` to a runtime expression (`$response.body#/id`,
    `$request.path.org_id`)."""

    operation_id: str
    description: str
    parameters: dict[str, str] = field(default_factory=dict)

    def openapi(self) -> dict[str, Any]:
        link: dict[str, Any] = {"operationId": self.operation_id, "description": self.description}
        if self.parameters:
            link["parameters"] = dict(self.parameters)
        return link


# The source operation (by operationId; each is one service's) -> its success status -> links.
# Only links whose target is in the same document are added: a link never crosses services.
LINKS: dict[str, tuple[str, dict[str, Link]]] = {
    # identity
    "create_org": (
        "201",
        {
            "ReadOrg": Link("read_org", "The organisation", {"path.org_id": "$response.body#/id"}),
            "UpdateOrg": Link(
                "update_org", "Change or retire it", {"path.org_id": "$response.body#/id"}
            ),
            "ListEmployees": Link(
                "list_employees", "Its people", {"path.org_id": "$response.body#/id"}
            ),
            "ListInvitations": Link(
                "list_invitations", "Its invitations", {"path.org_id": "$response.body#/id"}
            ),
        },
    ),
    "create_user": (
        "201",
        {
            "UpdateUser": Link(
                "update_user", "Change the user", {"path.user_id": "$response.body#/id"}
            ),
        },
    ),
    "start_acting": (
        "201",
        {
            "CurrentActingSession": Link(
                "current_acting",
                "The session's context for the badge; call it with this response's "
                "`access_token` as the bearer token",
            ),
            "OwnActingSession": Link(
                "own_acting_session",
                "The session as its staff member sees it in their history",
                {"path.session_id": "$response.body#/session_id"},
            ),
            "CustomerActingSessions": Link(
                "acting_sessions",
                "The customer's acting sessions, this one among them",
                {"path.org_id": "$response.body#/subject/org_id"},
            ),
        },
    ),
    "invite": (
        "200",
        {
            "ListInvitations": Link(
                "list_invitations",
                "The organisation's invitations, the new ones among them",
                {"path.org_id": "$request.path.org_id"},
            ),
        },
    ),
    # catalog
    "create_product": (
        "201",
        {
            "FindProduct": Link(
                "list_products",
                "The product as the caller sees it (a search by its SKU)",
                {"query.q": "$response.body#/sku"},
            ),
            "SetProductNumber": Link(
                "set_product_number",
                "A customer's own number for it",
                {"path.sku": "$response.body#/sku"},
            ),
        },
    ),
    "create_promotion": (
        "201",
        {
            "GetPromotion": Link(
                "get_promotion", "The promotion", {"path.promotion_id": "$response.body#/id"}
            ),
            "EndPromotion": Link(
                "end_promotion", "End it early", {"path.promotion_id": "$response.body#/id"}
            ),
        },
    ),
    # cart
    "add_item": (
        "200",
        {
            "GetCart": Link("get_cart", "The cart with the item"),
            "ChangeItem": Link(
                "change_item", "Change its quantity", {"path.sku": "$request.body#/sku"}
            ),
            "RemoveItem": Link("remove_item", "Take it out", {"path.sku": "$request.body#/sku"}),
        },
    ),
    "lock_cart": (
        "200",
        {
            "GetCart": Link("get_cart", "The locked cart"),
            "UnlockCart": Link("unlock_cart", "Release the lock"),
        },
    ),
    "create_saved_list": (
        "201",
        {
            "GetSavedList": Link(
                "get_saved_list", "The list", {"path.list_id": "$response.body#/id"}
            ),
            "AddListItem": Link(
                "add_list_item", "Add a product", {"path.list_id": "$response.body#/id"}
            ),
            "AddListToCart": Link(
                "add_list_to_cart", "Put it into the cart", {"path.list_id": "$response.body#/id"}
            ),
            "RenameSavedList": Link(
                "rename_saved_list", "Rename it", {"path.list_id": "$response.body#/id"}
            ),
        },
    ),
    # orders
    "place_order": (
        "201",
        {
            "GetOrder": Link(
                "get_order", "The order's detail", {"path.order_id": "$response.body#/id"}
            ),
            "ListOrders": Link("list_orders", "The customer's orders, this one first"),
            "CancelOrder": Link(
                "cancel_order", "Cancel it", {"path.order_id": "$response.body#/id"}
            ),
        },
    ),
    "create_budget": (
        "201",
        {
            "ListBudgets": Link("list_budgets", "The organisation's budgets, this one among them"),
            "ReplaceBudget": Link(
                "replace_budget", "Change it", {"path.budget_id": "$response.body#/id"}
            ),
        },
    ),
    # audit
    "checkpoint": (
        "201",
        {
            "VerifyToCheckpoint": Link(
                "verify",
                "Verify the chain up to the checkpoint's head",
                {"query.anchor": "$response.body#/head"},
            ),
        },
    ),
}


def add_links(spec: dict[str, Any]) -> None:
    """Declare LINKS on the responses of `spec`'s operations whose targets it also holds."""
    operations = {
        operation.get("operationId"): operation
        for item in spec.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    for source, (status, links) in LINKS.items():
        response = operations.get(source, {}).get("responses", {}).get(status)
        if response is None:
            continue
        present = {name: link for name, link in links.items() if link.operation_id in operations}
        if present:
            response["links"] = {name: link.openapi() for name, link in present.items()}
