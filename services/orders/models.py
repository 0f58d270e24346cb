"""Orders' tables: orders, their lines, their cancellations, the outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.outbox import OutboxMixin


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
    status: Mapped[str] = mapped_column(String(32), default="placed")
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


class Budget(Base):
    """What an employee, or the members of a cost center, may spend per period (budgets.py)."""

    __tablename__ = "budgets"
    __table_args__ = (
        Index("ix_budgets_org_id", "org_id"),
        Index("ix_budgets_employee", "org_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    # `employee` (user_id set) or `cost_center` (name set, members in budget_members).
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    # month | quarter | year (calendar periods, UTC).
    period: Mapped[str] = mapped_column(String(8))
    # refuse (409) | approval (the order waits for a customer admin).
    on_exceed: Mapped[str] = mapped_column(String(16))
    # The one budget of the organisation that orders placed by acting staff count against.
    for_assisted_orders: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BudgetMember(Base):
    """An employee whose orders count against a cost center's budget."""

    __tablename__ = "budget_members"

    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", name="fk_budget_members_budget_id"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class BudgetPeriod(Base):
    """What a budget has spent in one period: the row the conditional UPDATE spends on."""

    __tablename__ = "budget_periods"

    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", name="fk_budget_periods_budget_id"), primary_key=True
    )
    # 2026-12, 2026-Q4 or 2026.
    period_key: Mapped[str] = mapped_column(String(8), primary_key=True)
    spent: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))


class BudgetCharge(Base):
    """Which budget and period an order counted against, so that cancelling gives it back."""

    __tablename__ = "budget_charges"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(36))
    period_key: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # spent | awaiting (approval) | rejected | returned (cancelled).
    state: Mapped[str] = mapped_column(String(16))


class OutboxMessage(OutboxMixin, Base):
    pass
