"""Alembic environment of the catalog service: its models, migrated by the shared runner."""

from libs.common.migrations import run_env
from services.catalog.models import Base

run_env(Base.metadata)
