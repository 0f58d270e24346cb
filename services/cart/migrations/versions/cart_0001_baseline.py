"""Baseline of cart: the schema create_all made at commit 03a5c8f, before migrations.

Revision ID: cart_0001
Revises:
Create Date: 2026-12-02 05:46:10.635221
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cart_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A database create_all made (these tables, no alembic_version) is stamped at this revision
# instead of running it: see libs/common/migrations.py, _adopt.
ADOPTED_TABLES: tuple[str, ...] = (
    "cart_items",
    "cart_locks",
    "carts",
    "inbox",
    "outbox",
    "saved_list_items",
    "saved_lists",
)


def upgrade() -> None:
    op.create_table(
        "cart_locks",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("holder_id", sa.String(length=36), nullable=True),
        sa.Column("holder_name", sa.String(length=200), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id"),
    )
    with op.batch_alter_table("cart_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cart_locks_session_id"), ["session_id"], unique=False)

    op.create_table(
        "carts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("active_org_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("active_org_id"),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_carts_org_id"), ["org_id"], unique=False)

    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
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
        "saved_lists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_by_id", sa.String(length=36), nullable=False),
        sa.Column("created_by_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "name"),
    )
    with op.batch_alter_table("saved_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_lists_org_id"), ["org_id"], unique=False)

    op.create_table(
        "cart_items",
        sa.Column("cart_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"],
            ["carts.id"],
        ),
        sa.PrimaryKeyConstraint("cart_id", "sku"),
    )
    op.create_table(
        "saved_list_items",
        sa.Column("list_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["saved_lists.id"],
        ),
        sa.PrimaryKeyConstraint("list_id", "sku"),
    )


def downgrade() -> None:
    op.drop_table("saved_list_items")
    op.drop_table("cart_items")
    with op.batch_alter_table("saved_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_lists_org_id"))

    op.drop_table("saved_lists")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_published_at"))

    op.drop_table("outbox")
    op.drop_table("inbox")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carts_org_id"))

    op.drop_table("carts")
    with op.batch_alter_table("cart_locks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cart_locks_session_id"))

    op.drop_table("cart_locks")
