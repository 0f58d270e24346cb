"""Alembic environment of the identity service: its models, migrated by the shared runner."""

from libs.common.migrations import run_env
from services.identity.models import Base

run_env(Base.metadata)
