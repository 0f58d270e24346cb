"""Session fixtures: the whole system as real processes on free ports, and a fresh world per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from devtools.postgres import PostgresServer, start_postgres
from onbehalf.stack import Stack, start_stack
from tests.support import Api, World, build_world

ADMIN_EMAIL = "admin@seller.test"


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
