"""The caches' database tests run on SQLite and on PostgreSQL: one empty database per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.postgres import PostgresServer


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"cache_{tmp_path.name[-12:].lower().replace('-', '_')}")
