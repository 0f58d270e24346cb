"""The things policies decide about; each is built from in-memory data before a decision."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CustomerOrg:
    """An organisation someone may act for; the seller's own organisation is never one."""

    id: str
    name: str
    status: str = "active"
    allow_assistance: bool = True
    caretaker_ids: list[str] = field(default_factory=list)
    is_seller: bool = False

    def has_caretaker(self, user_id: str) -> bool:
        return user_id in self.caretaker_ids


@dataclass(slots=True)
class Catalog:
    """The products and prices one customer organisation sees."""

    org_id: str


@dataclass(slots=True)
class Cart:
    """The active cart of one customer organisation."""

    org_id: str


@dataclass(slots=True)
class OrderBook:
    """The orders of one customer organisation: placing and reading them."""

    org_id: str


@dataclass(slots=True)
class AuditLog:
    """The append-only audit log."""

    name: str = "audit"


@dataclass(slots=True)
class Administration:
    """Platform administration: organisations, users, caretakers, products, prices."""

    area: str


POLICY_CLASSES: tuple[type, ...] = (
    CustomerOrg,
    Catalog,
    Cart,
    OrderBook,
    AuditLog,
    Administration,
)
