"""Audit: each record's emitter (proved by its signature); the findings table of refused events.

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-12-02 05:53:33.648391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0002"
down_revision: str | Sequence[str] | None = "audit_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_findings",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("nats_subject", sa.String(length=300), nullable=True),
        sa.Column("signature_kid", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("digest"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("audit_findings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_findings_recorded_at"), ["recorded_at"], unique=False
        )

    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        # Nullable: records chained before events were signed name no emitter (and verify
        # reports them as unsigned).
        batch_op.add_column(sa.Column("emitter", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_column("emitter")

    with op.batch_alter_table("audit_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_findings_recorded_at"))

    op.drop_table("audit_findings")
