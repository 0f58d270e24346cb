"""Carts are indexed by organisation and version, so a new cart's version is read from the
index's end instead of from every past cart of its organisation (one per order placed).

Revision ID: cart_0003
Revises: cart_0002
Create Date: 2026-12-03 07:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "cart_0003"
down_revision: str | Sequence[str] | None = "cart_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        # Created before the old one goes, so lookups by organisation always have an index.
        batch_op.create_index("ix_carts_org_version", ["org_id", "version"], unique=False)
        batch_op.drop_index("ix_carts_org_id")


def downgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index("ix_carts_org_id", ["org_id"], unique=False)
        batch_op.drop_index("ix_carts_org_version")
