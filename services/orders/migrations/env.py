"""Alembic environment of the orders service: its models, migrated by the shared runner."""

from libs.common.migrations import run_env
from services.orders.models import Base

run_env(Base.metadata)
