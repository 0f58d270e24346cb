"""Alembic environment of the cart service: its models, migrated by the shared runner."""

from libs.common.migrations import run_env
from services.cart.models import Base

run_env(Base.metadata)
