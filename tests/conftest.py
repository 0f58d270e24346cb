"""Session fixtures: the whole system as real processes on free ports, and a fresh world per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.postgres import PostgresServer, start_postgres
from onbehalf.stack import Stack, start_stack
from tests.support import Api, World, build_world, unique

ADMIN_EMAIL = "admin@seller.test"

# The longest test files, longest first (seconds summed over setup, call and teardown with
# `--durations=0`, 2026-12-02: 193, 122, 57, 53, 42, 36, 34, 29, 28, 27). pytest-xdist hands
# out whole files (`--dist loadfile`) in collection order, so a long file collected late ends
# the run alone while the other process idles; taken first, the short ones fill in around it.
LONGEST_FIRST = (
    "tests/faults/test_audit_faults.py",
    "tests/contract/test_schemathesis.py",
    "tests/security/test_http_attacks.py",
    "tests/security/test_bus_attacks.py",
    "tests/operations/test_supervise.py",
    "tests/cluster/test_cluster_faults.py",
    "tests/contract/test_openapi_links.py",
    "tests/migrations/test_migrations.py",
    "tests/security/test_chain_checkpoints.py",
    "tests/console/test_acting_flows.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    root = config.rootpath
    # A stable sort: each file's tests stay together and in their order.
    items.sort(key=lambda item: rank.get(item.path.relative_to(root).as_posix(), len(rank)))


@pytest.fixture(scope="session")
def admin_password() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, admin_password: str) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("stack"), admin_email=ADMIN_EMAIL, admin_password=admin_password
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL 16 (pgserver) per session; tests create a database each."""
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind, for tests of statements whose behaviour or SQL differs
    between SQLite and PostgreSQL (a database of its own on the session's server)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(unique("db").replace("-", "_"))


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as client:
        yield client


@pytest.fixture(scope="session")
def anonymous(stack: Stack, http: httpx.Client) -> Api:
    return Api(stack=stack, client=http)


@pytest.fixture(scope="session")
def admin(anonymous: Api, admin_password: str) -> Api:
    return anonymous.login(ADMIN_EMAIL, admin_password)


@pytest.fixture
def world(admin: Api) -> World:
    return build_world(admin)
