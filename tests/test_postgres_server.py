"""A real PostgreSQL from pgserver: databases, asyncpg URLs and row locks with SKIP LOCKED."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from devtools.postgres import PostgresServer, _base_lock, _remove_orphans, start_postgres


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PostgresServer]:
    running = start_postgres(tmp_path)
    try:
        yield running
    finally:
        running.stop()


async def _make_jobs(engine: AsyncEngine, rows: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE jobs (id serial PRIMARY KEY, name text NOT NULL)"))
        for name in rows:
            await conn.execute(text("INSERT INTO jobs (name) VALUES (:name)"), {"name": name})


async def test_databases_are_separate_and_usable(server: PostgresServer) -> None:
    urls = [server.create_database("alpha"), server.create_database("beta")]
    assert all(url.startswith("postgresql+asyncpg://") for url in urls)
    for url, name in zip(urls, ["alpha", "beta"], strict=True):
        engine = create_async_engine(url)
        try:
            await _make_jobs(engine, [f"job-in-{name}"])
            async with engine.connect() as conn:
                current = await conn.scalar(text("SELECT current_database()"))
                names = (await conn.scalars(text("SELECT name FROM jobs"))).all()
            assert current == name
            assert names == [f"job-in-{name}"]  # each database has only its own row
        finally:
            await engine.dispose()


async def test_skip_locked_hands_each_transaction_a_different_row(server: PostgresServer) -> None:
    engine = create_async_engine(server.create_database("queue"))
    claim = text("SELECT id FROM jobs ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")
    try:
        await _make_jobs(engine, ["first", "second"])
        async with engine.connect() as one, engine.connect() as two:
            await one.begin()
            await two.begin()
            assert await one.scalar(claim) == 1
            assert await two.scalar(claim) == 2  # row 1 is locked by `one`: skipped, no waiting
            assert await two.scalar(claim) == 2  # a transaction does not skip its own lock
            await one.commit()
            await two.rollback()
        async with engine.connect() as three:
            await three.begin()
            assert await three.scalar(claim) == 1  # released when `one` committed
            await three.rollback()
    finally:
        await engine.dispose()


def test_stop_leaves_no_running_postgres(tmp_path: Path) -> None:
    running = start_postgres(tmp_path)
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()  # the symlink points at the data dir
    postmaster = psutil.Process(running.pid)
    children = postmaster.children()
    assert children  # checkpointer, walwriter, ...
    running.stop()
    running.stop()  # idempotent
    for process in [postmaster, *children]:
        # PID 1 here does not reap orphans, so an exited postmaster may remain a zombie.
        with contextlib.suppress(psutil.NoSuchProcess):
            assert process.status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "pgdata").is_symlink()


def test_a_clock_step_does_not_make_a_live_owner_look_dead(
    server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NTP moving the wall clock moves the boot time psutil adds to every process's start time;
    # another session starting a server must still see this one's owner as alive and leave it.
    shifted = psutil._pslinux.boot_time() + 1.0
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: shifted)
    with _base_lock():
        _remove_orphans()
    assert psutil.Process(server.pid).status() != psutil.STATUS_ZOMBIE
    assert (server.pgdata / "PG_VERSION").exists()
