"""The outbox row keeps the traceparent of the transaction that wrote it (tracing on only).

Revision ID: identity_0007
Revises: identity_0006
Create Date: 2026-12-02 09:46:02.110822
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0007"
down_revision: str | Sequence[str] | None = "identity_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("traceparent")
