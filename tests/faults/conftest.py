"""Fault-test fixtures: a fresh stack per test on either backend (PostgreSQL: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.postgres import PostgresServer
from tests.faults.harness import Backend, FaultStack, start_fault_stack


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def faults(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaultStack]:
    """A stack of the test's own, so that it can stop and kill processes freely."""
    backend: Backend = request.param
    server = request.getfixturevalue("postgres") if backend == "postgres" else None
    running = start_fault_stack(tmp_path / "stack", backend, server)
    try:
        yield running
    finally:
        running.stack.stop()
        running.close()


@pytest.fixture
def postgres_faults(tmp_path: Path, postgres: PostgresServer) -> Iterator[FaultStack]:
    """The same stack on PostgreSQL only, for faults SQLite has no counterpart of."""
    running = start_fault_stack(tmp_path / "stack", "postgres", postgres)
    try:
        yield running
    finally:
        running.stack.stop()
        running.close()
