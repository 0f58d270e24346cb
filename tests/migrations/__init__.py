"""Tests of the Alembic migrations of every service."""
