"""A stack of this package's own (demo data loaded, logs at info), so that its tests may stop NATS,
read every log file and run the README's commands without disturbing the session stack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from onbehalf.demo import load_demo_data
from onbehalf.stack import SERVICES, Stack, start_stack

ADMIN_EMAIL = "admin@firsthour.test"


@pytest.fixture(scope="package")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    password = secrets.token_urlsafe(16)
    workdir: Path = tmp_path_factory.mktemp("firsthour")
    running = start_stack(
        workdir,
        admin_email=ADMIN_EMAIL,
        admin_password=password,
        extra_env={"ONBEHALF_LOG_LEVEL": "info", "ONBEHALF_LOG_FORMAT": "json"},
    )
    try:
        load_demo_data(
            {name: running.url(name) for name in SERVICES},
            admin_email=ADMIN_EMAIL,
            admin_password=password,
        )
        yield running
    finally:
        running.stop()
