"""Rights generations of users and organisations; the login session of an acting session.

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-12-02 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0002"
down_revision: str | Sequence[str] | None = "identity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows start at generation 0, the generation tokens without a `ugen` claim carry.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("acting_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_session_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_acting_sessions_login_session_id"), ["login_session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("acting_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acting_sessions_login_session_id"))
        batch_op.drop_column("login_session_id")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("generation")
