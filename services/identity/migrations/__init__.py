"""Alembic migrations of the identity service's database (see services/README-migrations.md)."""
