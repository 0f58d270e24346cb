"""Alembic migrations of the audit service's database (see services/README-migrations.md)."""
