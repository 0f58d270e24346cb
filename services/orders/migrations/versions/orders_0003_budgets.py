"""Budgets: per employee or cost center, their periods and what each order charged; a
wider orders.status (awaiting_approval).

Revision ID: orders_0003
Revises: orders_0002
Create Date: 2026-12-02 06:49:28.115690
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "orders_0003"
down_revision: str | Sequence[str] | None = "orders_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_charges",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("budget_id", sa.String(length=36), nullable=False),
        sa.Column("period_key", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("on_exceed", sa.String(length=16), nullable=False),
        sa.Column("for_assisted_orders", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.create_index("ix_budgets_employee", ["org_id", "user_id"], unique=False)
        batch_op.create_index("ix_budgets_org_id", ["org_id"], unique=False)

    op.create_table(
        "budget_members",
        sa.Column("budget_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], name="fk_budget_members_budget_id"),
        sa.PrimaryKeyConstraint("budget_id", "user_id"),
    )
    op.create_table(
        "budget_periods",
        sa.Column("budget_id", sa.String(length=36), nullable=False),
        sa.Column("period_key", sa.String(length=8), nullable=False),
        sa.Column("spent", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], name="fk_budget_periods_budget_id"),
        sa.PrimaryKeyConstraint("budget_id", "period_key"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.VARCHAR(length=16),
            type_=sa.String(length=32),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=32),
            type_=sa.VARCHAR(length=16),
            existing_nullable=False,
        )

    op.drop_table("budget_periods")
    op.drop_table("budget_members")
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.drop_index("ix_budgets_org_id")
        batch_op.drop_index("ix_budgets_employee")

    op.drop_table("budgets")
    op.drop_table("budget_charges")
