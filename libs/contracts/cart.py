"""What cart publishes and answers: cart and lock events, saved-list events, and the two
requests orders makes of it (an order snapshot before placing, a checkout after)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from libs.contracts.base import Event, Id, Message, Refusal, Request
from libs.contracts.orders import OrderPlaced

Sku = str


# ---------------------------------------------------------------- the cart's lines


class CartItemAdded(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.item.added"

    cart_id: Id
    cart_version: int
    sku: Sku
    quantity: int
    unit_price: Decimal
    currency: str
    added: int


class CartItemChanged(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.item.changed"

    cart_id: Id
    cart_version: int
    sku: Sku
    quantity: int
    unit_price: Decimal
    currency: str


class CartItemRemoved(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.item.removed"

    cart_id: Id
    cart_version: int
    sku: Sku


class CartCheckedOut(Event):
    """An order emptied the cart: `status` is `checked_out` when the whole cart was ordered
    as it was, `active` when only the ordered quantities left a cart changed since."""

    event_type: ClassVar[str] = "com.onbehalf.cart.checked_out"

    cart_id: Id
    order_id: Id
    status: str


# ---------------------------------------------------------------- the lock


class LockHolder(BaseModel):
    """A lock's holder as events record it."""

    id: str | None
    name: str | None
    session_id: str | None
    since: datetime | None
    last_activity_at: datetime | None
    idle_seconds: int


class CartLockAcquired(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.lock.acquired"

    org_id: Id
    holder: LockHolder
    # A lock left by an ended session that this one replaced.
    replaced_ended_lock: LockHolder | None


class CartLockTakenOver(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.lock.taken_over"

    org_id: Id
    previous_holder: LockHolder
    holder: LockHolder
    idle_seconds: int
    takeover_idle_seconds: int


class CartLockReleased(Event):
    """`reason`: `released` by the holder, or `session_ended` with the session's own reason."""

    event_type: ClassVar[str] = "com.onbehalf.cart.lock.released"

    org_id: Id
    holder: LockHolder
    reason: Literal["released", "session_ended"]
    session_end_reason: str | None = None


# ---------------------------------------------------------------- saved lists


class ListLine(BaseModel):
    sku: Sku
    quantity: int


class PricedListLine(ListLine):
    unit_price: Decimal


class SavedListCreated(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.created"

    list_id: Id
    name: str
    items: list[ListLine]


class SavedListRenamed(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.renamed"

    list_id: Id
    previous_name: str
    name: str


class SavedListDeleted(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.deleted"

    list_id: Id
    name: str
    items: list[ListLine]


class SavedListItemAdded(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.item_added"

    list_id: Id
    sku: Sku
    added: int
    quantity: int


class SavedListItemChanged(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.item_changed"

    list_id: Id
    sku: Sku
    previous_quantity: int
    quantity: int


class SavedListItemRemoved(Event):
    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.item_removed"

    list_id: Id
    sku: Sku
    quantity: int


class SavedListAddedToCart(Event):
    """A whole saved list went into the cart: one event for all its lines."""

    event_type: ClassVar[str] = "com.onbehalf.cart.saved_list.added_to_cart"

    list_id: Id
    name: str
    cart_id: Id
    cart_version: int
    items: list[PricedListLine]


# ---------------------------------------------------------------- requests orders makes
#
# Both carry the bearer token the order is placed with in the `Authorization` header, never
# in the body: cart verifies it and asks the policy itself, so a process that can publish on
# the subject cannot speak for anyone.

AUTHORIZATION_HEADER = "Authorization"


class CartSnapshotRequest(Request):
    """May the token's holder order the cart in view, and exactly what is in it, priced now?
    One request instead of a cart read, a lock rule and a price quote in orders."""

    subject: ClassVar[str] = "cart.order_snapshot"


class SnapshotLine(BaseModel):
    """One cart line at the catalog's price at the moment of the snapshot."""

    sku: Sku
    name: str
    quantity: int = Field(ge=1)
    unit_price: Decimal
    line_total: Decimal


class CartSnapshot(Message):
    """The cart as it may be ordered: non-empty, one currency, every product available, not
    locked by anyone but the caller (cart's own lock rule decided)."""

    cart_id: Id
    org_id: Id
    version: int
    currency: str
    total: Decimal
    lines: list[SnapshotLine]


class CartSnapshotReply(Message):
    """Exactly one of `snapshot` and `refusal`."""

    snapshot: CartSnapshot | None = None
    refusal: Refusal | None = None


class CheckoutLine(BaseModel):
    sku: Sku = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1)


class CheckoutOrder(BaseModel):
    """What cart needs of an order to check its cart out (the same fields as OrderPlaced's)."""

    order_id: Id
    cart_id: Id
    cart_version: int
    items: list[CheckoutLine] = Field(default_factory=list)

    @classmethod
    def of(cls, placed: OrderPlaced) -> CheckoutOrder:
        """The checkout an `orders.order.placed` event calls for (the request and the event
        check out by the same function, keyed by the same order id)."""
        return cls(
            order_id=placed.order_id,
            cart_id=placed.cart_id,
            cart_version=placed.cart_version,
            items=[CheckoutLine(sku=line.sku, quantity=line.quantity) for line in placed.items],
        )


class CartCheckout(Request):
    """An order was placed from this cart: check it out now, before orders answers. The
    `orders.order.placed` event does the same a little later if this request fails; cart
    checks out each order once (keyed by order id)."""

    subject: ClassVar[str] = "cart.checkout"

    order: CheckoutOrder


class CheckoutReply(Message):
    ok: bool
    error: str | None = None
    reason: str | None = None

    def encode(self) -> bytes:
        # `{"ok": true}` and nothing else when it worked.
        return self.model_dump_json(exclude_none=True).encode()
