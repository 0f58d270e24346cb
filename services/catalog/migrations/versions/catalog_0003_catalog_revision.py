"""The catalog revision: one row every catalog write raises, which cached prices are checked by.

Revision ID: catalog_0003
Revises: catalog_0002
Create Date: 2026-12-02 12:43:30.955745
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "catalog_0003"
down_revision: str | Sequence[str] | None = "catalog_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row; writes only ever UPDATE it, so it must exist before the first write.
    op.bulk_insert(table, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    op.drop_table("catalog_revision")
