"""Cart's tables: carts and their items, cart locks, saved lists, the inbox, the outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.inbox import InboxMixin
from libs.common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class Cart(Base):
    """A customer organisation's cart; at most one is active per organisation."""

    __tablename__ = "carts"
    __table_args__ = (
        # An organisation's carts by version: a new cart continues from the highest version
        # its organisation reached, read from the index's end, not from every past cart (one
        # per order placed); lookups by organisation alone use its first column.
        Index("ix_carts_org_version", "org_id", "version"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    # Set to org_id while the cart is active and cleared at checkout: the unique
    # constraint makes "one active cart per organisation" hold under concurrency.
    active_org_id: Mapped[str | None] = mapped_column(String(36), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CartItem.position",
    )


class CartItem(Base):
    __tablename__ = "cart_items"

    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    position: Mapped[int] = mapped_column(Integer, default=0)

    cart: Mapped[Cart] = relationship(back_populates="items")


class CartLock(Base):
    """Who holds the lock on an organisation's active cart; one row per organisation.

    Every cart change takes this row FOR UPDATE before anything else, so on PostgreSQL the
    changes of one organisation queue behind each other and behind lock changes (SQLite
    serialises all writers anyway). Locking, take-over and release are compare-and-set on
    `version`, which also moves whenever the holder uses the lock.
    """

    __tablename__ = "cart_locks"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    holder_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    holder_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The acting session that holds the lock: the lock ends with it.
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    session_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_activity_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class SavedList(Base):
    """A saved list (order list) of a customer organisation, shared by all its users."""

    __tablename__ = "saved_lists"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[str] = mapped_column(String(36))
    created_by_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    items: Mapped[list[SavedListItem]] = relationship(
        back_populates="saved_list",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="SavedListItem.position",
    )


class SavedListItem(Base):
    __tablename__ = "saved_list_items"

    list_id: Mapped[str] = mapped_column(ForeignKey("saved_lists.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)

    saved_list: Mapped[SavedList] = relationship(back_populates="items")


class InboxEntry(InboxMixin, Base):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass
