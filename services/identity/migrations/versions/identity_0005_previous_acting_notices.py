"""The acting-notice choice before the last change, for sessions started before it.

Revision ID: identity_0005
Revises: identity_0004
Create Date: 2026-12-02 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0005"
down_revision: str | Sequence[str] | None = "identity_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("org_preferences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_notices", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("org_preferences", schema=None) as batch_op:
        batch_op.drop_column("previous_notices")
