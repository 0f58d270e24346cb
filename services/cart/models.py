"""Cart's tables: carts, their items, the inbox of handled events, the outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.db import UtcDateTime
from libs.common.inbox import InboxMixin
from libs.common.outbox import OutboxMixin, utcnow


class Base(DeclarativeBase):
    pass


class Cart(Base):
    """A customer organisation's cart; at most one is active per organisation."""

    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
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


class InboxEntry(InboxMixin, Base):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass
