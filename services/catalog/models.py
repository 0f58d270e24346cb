"""Catalog's tables: products, customer prices, assortments, outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import UtcDateTime
from libs.common.outbox import OutboxMixin, utcnow


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CustomerPrice(Base):
    """A customer-specific price for one product; the base price applies where none is set."""

    __tablename__ = "customer_prices"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AssortmentItem(Base):
    """A product assigned to a customer; an organisation with none assigned sees every product."""

    __tablename__ = "assortment_items"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)


class OutboxMessage(OutboxMixin, Base):
    pass
