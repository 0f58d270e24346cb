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


@dataclass(slots=True)
class Account:
    """A user's own login: password and other credentials."""

    user_id: str
    org_id: str


@dataclass(slots=True)
class CustomerProductNumbers:
    """A customer organisation's own numbers for products (its material numbers)."""

    org_id: str


@dataclass(slots=True)
class CartLock:
    """The lock on one customer organisation's active cart, as a take-over sees it.

    `holder_id` is the staff member holding it (None when free); `idle_seconds` is how long
    the holder has not used it, `takeover_idle_seconds` the cart service's idle limit."""

    org_id: str
    holder_id: str | None = None
    holder_session_id: str | None = None
    idle_seconds: int = 0
    takeover_idle_seconds: int = 600


@dataclass(slots=True)
class SavedList:
    """One of a customer organisation's saved lists (order lists); `id` is None for a new one."""

    org_id: str
    id: str | None = None


@dataclass(slots=True)
class PlacedOrder:
    """One order of a customer organisation, e.g. to cancel it. Whether a cancel comes too
    late is the service's business (a conflict, not a denial); who placed it and whether it
    awaits approval are the policy's: its buyer may withdraw an order still awaiting approval."""

    org_id: str
    id: str | None = None
    placed_by_id: str | None = None
    awaiting_approval: bool = False


@dataclass(slots=True)
class Budgets:
    """The spending budgets of one customer organisation (per employee or cost center) and
    the orders waiting for approval because they exceed one (orders' budgets.py)."""

    org_id: str


@dataclass(slots=True)
class LoginLink:
    """A user's personal login link (identity's login_links.py), with the platform's settings
    and the user's choice that the policy weighs."""

    user_id: str
    org_id: str = ""
    # ONBEHALF_LOGIN_LINKS_ENABLED; ONBEHALF_LOGIN_LINKS_FOR_ACTING_STAFF.
    platform_allows: bool = False
    allowed_for_acting_staff: bool = False
    # "Yes, I want an individual login link" (PUT /v1/me/preferences {login_link: true}).
    opted_in: bool = False


POLICY_CLASSES: tuple[type, ...] = (
    Account,
    CustomerOrg,
    Catalog,
    Cart,
    OrderBook,
    AuditLog,
    Administration,
    CustomerProductNumbers,
    CartLock,
    SavedList,
    PlacedOrder,
    Budgets,
    LoginLink,
)
