"""Every message between services, one typed model each: see docs/decisions.md (contracts).

One module per owning service (`libs.contracts.orders` holds what orders publishes and
answers); a consumer imports the producer's module, never the producer's service package.
"""

from __future__ import annotations

from typing import TypeVar

from libs.contracts import audit, cart, catalog, customers, identity, orders
from libs.contracts.base import Event, Request, cloudevents_type

T = TypeVar("T")


def _all_subclasses(root: type[T]) -> list[type[T]]:
    found: list[type[T]] = []
    for sub in root.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def event_types() -> dict[str, type[Event]]:
    """Every event contract by its CloudEvents type (the ones with a type of their own)."""
    return {cls.event_type: cls for cls in _all_subclasses(Event) if "event_type" in vars(cls)}


def contract_of(event_type: str) -> type[Event] | None:
    """The contract of a received event's `type`, in either form (v1 `cart.item.added` or
    `com.onbehalf.cart.item.added`); None for a type no contract declares."""
    return event_types().get(cloudevents_type(event_type))


def requests() -> dict[str, type[Request]]:
    """Every request contract by its subject."""
    return {cls.subject: cls for cls in _all_subclasses(Request) if "subject" in vars(cls)}


__all__ = [
    "audit",
    "cart",
    "catalog",
    "contract_of",
    "customers",
    "event_types",
    "identity",
    "orders",
    "requests",
]
