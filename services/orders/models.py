"""Orders' tables: orders, their lines, their cancellations, the outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.db import UtcDateTime
from libs.common.outbox import OutboxMixin, utcnow


class Base(DeclarativeBase):
    pass


class Order(Base):
    """An order of a customer organisation, whoever placed it."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("customer_org_id", "idempotency_key"),
        # The same state of a cart is ordered once, whatever the Idempotency-Key says.
        UniqueConstraint("cart_id", "cart_version"),
        # A customer's history, newest first, read in index order (no sort of all its orders);
        # lookups by organisation alone use it or the idempotency constraint.
        Index("ix_orders_customer_history", "customer_org_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_org_id: Mapped[str] = mapped_column(String(36))
    placed_by_id: Mapped[str] = mapped_column(String(36))
    placed_by_name: Mapped[str] = mapped_column(String(200))
    acting_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="placed")
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    purchase_order_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cart_id: Mapped[str] = mapped_column(String(36))
    cart_version: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="OrderLine.position",
    )
    cancellation: Mapped[OrderCancellation | None] = relationship(
        back_populates="order", lazy="selectin", uselist=False
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    line_total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    position: Mapped[int] = mapped_column(Integer, default=0)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderCancellation(Base):
    """Who cancelled an order, when, and in which acting session (its own table, so that the
    orders table keeps its schema: there are no migrations yet)."""

    __tablename__ = "order_cancellations"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    cancelled_by_id: Mapped[str] = mapped_column(String(36))
    cancelled_by_name: Mapped[str] = mapped_column(String(200))
    acting_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    cancelled_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    order: Mapped[Order] = relationship(back_populates="cancellation")


class OutboxMessage(OutboxMixin, Base):
    pass
