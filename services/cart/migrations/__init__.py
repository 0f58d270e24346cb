"""Alembic migrations of the cart service's database (see services/README-migrations.md)."""
