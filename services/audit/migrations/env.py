"""Alembic environment of the audit service: its models, migrated by the shared runner."""

from libs.common.migrations import run_env
from services.audit.models import Base

run_env(Base.metadata)
