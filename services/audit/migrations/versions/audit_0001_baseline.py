"""Baseline of audit: the schema create_all made at commit 03a5c8f, before migrations.

Revision ID: audit_0001
Revises:
Create Date: 2026-12-02 05:46:10.789028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A database create_all made (these tables, no alembic_version) is stamped at this revision
# instead of running it: see libs/common/migrations.py, _adopt.
ADOPTED_TABLES: tuple[str, ...] = ("audit_records", "outbox")


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("actor_org_id", sa.String(length=36), nullable=True),
        sa.Column("subject_org_id", sa.String(length=36), nullable=True),
        sa.Column("subject_user_id", sa.String(length=36), nullable=True),
        sa.Column("acting_session_id", sa.String(length=36), nullable=True),
        sa.Column("policy_revision", sa.String(length=32), nullable=True),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("prev_hash"),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_records_acting_session_id"), ["acting_session_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_records_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_records_subject_org_id"), ["subject_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_records_time"), ["time"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_records_type"), ["type"], unique=False)

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


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_published_at"))

    op.drop_table("outbox")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_records_type"))
        batch_op.drop_index(batch_op.f("ix_audit_records_time"))
        batch_op.drop_index(batch_op.f("ix_audit_records_subject_org_id"))
        batch_op.drop_index(batch_op.f("ix_audit_records_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_records_acting_session_id"))

    op.drop_table("audit_records")
