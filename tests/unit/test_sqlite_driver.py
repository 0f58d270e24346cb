"""The one-hop SQLite driver answers like SQLAlchemy's own aiosqlite adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from libs.common.db import create_engine
from libs.common.sqlite_driver import OneHopConnection


def test_rows_counts_ids_returning_and_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
        try:
            async with engine.begin() as connection:
                raw = await connection.get_raw_connection()
                assert isinstance(raw.dbapi_connection, OneHopConnection)
                await connection.execute(
                    text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INT)")
                )
                inserted = await connection.execute(
                    text("INSERT INTO item (name, n) VALUES ('a', 1)")
                )
                assert inserted.lastrowid == 1
                many = await connection.execute(
                    text("INSERT INTO item (name, n) VALUES (:name, :n)"),
                    [{"name": "b", "n": 2}, {"name": "c", "n": 3}],
                )
                assert many.rowcount == 2
                updated = await connection.execute(text("UPDATE item SET n = n + 10 WHERE n > 1"))
                assert updated.rowcount == 2
                returned = await connection.execute(
                    text("UPDATE item SET n = 0 WHERE name = 'a' RETURNING id, n")
                )
                assert returned.all() == [(1, 0)]
                rows = await connection.execute(text("SELECT name, n FROM item ORDER BY id"))
                assert list(rows.keys()) == ["name", "n"]
                assert rows.all() == [("a", 0), ("b", 12), ("c", 13)]
            with pytest.raises(IntegrityError):
                async with engine.begin() as connection:
                    await connection.execute(text("INSERT INTO item (name, n) VALUES ('a', 9)"))
            async with engine.connect() as connection:
                count = await connection.scalar(text("SELECT count(*) FROM item"))
                assert count == 3
        finally:
            await engine.dispose()

    asyncio.run(scenario())
