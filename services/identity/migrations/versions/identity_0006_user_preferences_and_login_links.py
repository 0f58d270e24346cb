"""User preferences (a staff member's default customer after login, the login-link opt-in)
and personal login links (only the secret's hash).

Revision ID: identity_0006
Revises: identity_0005
Create Date: 2026-12-02 07:04:06.679387
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0006"
down_revision: str | Sequence[str] | None = "identity_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_links",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_login_links_user_id"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("login_links", schema=None) as batch_op:
        batch_op.create_index("ix_login_links_secret_hash", ["secret_hash"], unique=True)

    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("default_customer_org_id", sa.String(length=36), nullable=True),
        sa.Column("after_login", sa.String(length=32), nullable=False),
        sa.Column("acting_mode", sa.String(length=8), nullable=False),
        sa.Column("login_link_opt_in", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_preferences_user_id"),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("user_preferences")
    with op.batch_alter_table("login_links", schema=None) as batch_op:
        batch_op.drop_index("ix_login_links_secret_hash")

    op.drop_table("login_links")
