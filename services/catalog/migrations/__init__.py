"""Alembic migrations of the catalog service's database (see services/README-migrations.md)."""
