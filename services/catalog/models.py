"""Catalog's tables: products, prices, assortments, promotions, groups, product numbers, the
catalog revision, outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.outbox import OutboxMixin


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


class CustomerGroupMember(Base):
    """An organisation's membership in a customer group, which promotions can target."""

    __tablename__ = "customer_group_members"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Promotion(Base):
    """A discount for some customers on some products (all, when none are listed) for a time.

    It applies while valid_from <= now < valid_to (valid_to None: until it is ended).
    """

    __tablename__ = "promotions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    # Only a fixed discount has a currency; it applies to prices in that currency.
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    valid_to: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    targets: Mapped[list[PromotionTarget]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="PromotionTarget.ref"
    )
    products: Mapped[list[PromotionProduct]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="PromotionProduct.sku"
    )


# What a PromotionTarget names: an organisation or a customer group.
TARGET_ORG = "org"
TARGET_GROUP = "group"


class PromotionTarget(Base):
    """Who a promotion is for: an organisation (kind "org") or a customer group ("group")."""

    __tablename__ = "promotion_targets"

    promotion_id: Mapped[str] = mapped_column(ForeignKey("promotions.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class PromotionProduct(Base):
    """A product a promotion is limited to."""

    __tablename__ = "promotion_products"

    promotion_id: Mapped[str] = mapped_column(ForeignKey("promotions.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)


class CustomerProductNumber(Base):
    """A customer organisation's own number for a product; unique within the organisation."""

    __tablename__ = "customer_product_numbers"
    __table_args__ = (UniqueConstraint("org_id", "number"),)

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    number: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CatalogRevision(Base):
    """One row: a number every catalog write raises in its own transaction, so any replica can
    tell with one tiny query whether what it cached still holds (services/catalog/views.py)."""

    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboxMessage(OutboxMixin, Base):
    pass
