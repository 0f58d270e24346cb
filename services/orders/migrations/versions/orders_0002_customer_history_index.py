"""Orders: a customer's history index (organisation, time, id) replaces the organisation index.

Revision ID: orders_0002
Revises: orders_0001
Create Date: 2026-12-02 05:47:50.059444
"""

from collections.abc import Sequence

from alembic import op

revision: str = "orders_0002"
down_revision: str | Sequence[str] | None = "orders_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        # The new index first: lookups by organisation are never without one.
        batch_op.create_index(
            "ix_orders_customer_history", ["customer_org_id", "created_at", "id"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_orders_customer_org_id"))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_customer_org_id"), ["customer_org_id"], unique=False
        )
        batch_op.drop_index("ix_orders_customer_history")
