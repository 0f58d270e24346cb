"""Baseline of catalog: the schema create_all made at commit 03a5c8f, before migrations.

Revision ID: catalog_0001
Revises:
Create Date: 2026-12-02 05:46:10.547719
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "catalog_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A database create_all made (these tables, no alembic_version) is stamped at this revision
# instead of running it: see libs/common/migrations.py, _adopt.
ADOPTED_TABLES: tuple[str, ...] = (
    "assortment_items",
    "customer_group_members",
    "customer_prices",
    "customer_product_numbers",
    "outbox",
    "products",
    "promotion_products",
    "promotion_targets",
    "promotions",
)


def upgrade() -> None:
    op.create_table(
        "customer_group_members",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("group", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "group"),
    )
    with op.batch_alter_table("customer_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_group_members_group"), ["group"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_published_at"), ["published_at"], unique=False)

    op.create_table(
        "products",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_name"), ["name"], unique=False)

    op.create_table(
        "promotions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotions_valid_from"), ["valid_from"], unique=False)
        batch_op.create_index(batch_op.f("ix_promotions_valid_to"), ["valid_to"], unique=False)

    op.create_table(
        "assortment_items",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["products.sku"],
        ),
        sa.PrimaryKeyConstraint("org_id", "sku"),
    )
    op.create_table(
        "customer_prices",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["products.sku"],
        ),
        sa.PrimaryKeyConstraint("org_id", "sku"),
    )
    op.create_table(
        "customer_product_numbers",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["products.sku"],
        ),
        sa.PrimaryKeyConstraint("org_id", "sku"),
        sa.UniqueConstraint("org_id", "number"),
    )
    op.create_table(
        "promotion_products",
        sa.Column("promotion_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["products.sku"],
        ),
        sa.PrimaryKeyConstraint("promotion_id", "sku"),
    )
    op.create_table(
        "promotion_targets",
        sa.Column("promotion_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.PrimaryKeyConstraint("promotion_id", "kind", "ref"),
    )
    with op.batch_alter_table("promotion_targets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotion_targets_ref"), ["ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("promotion_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_targets_ref"))

    op.drop_table("promotion_targets")
    op.drop_table("promotion_products")
    op.drop_table("customer_product_numbers")
    op.drop_table("customer_prices")
    op.drop_table("assortment_items")
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotions_valid_to"))
        batch_op.drop_index(batch_op.f("ix_promotions_valid_from"))

    op.drop_table("promotions")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_name"))

    op.drop_table("products")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_published_at"))

    op.drop_table("outbox")
    with op.batch_alter_table("customer_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_group_members_group"))

    op.drop_table("customer_group_members")
