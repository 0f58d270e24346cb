"""Alembic migrations of the orders service's database (see services/README-migrations.md)."""
