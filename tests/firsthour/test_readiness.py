"""`/healthz` is liveness (the process answers); `/readyz` is readiness: NATS, database, policy."""

from __future__ import annotations

import json

import httpx

from onbehalf.stack import CONSOLE, SERVICES, Stack
from tests.support import wait_until


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=5.0)


def _answering(url: str, status: int) -> httpx.Response | None:
    response = _ready(url)
    return response if response.status_code == status else None


def test_readyz_names_nats_while_it_is_away_and_healthz_stays_alive(own_stack: Stack) -> None:
    for name in SERVICES:
        response = _ready(own_stack.url(name))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"] == {"nats": True, "database": True, "policy": True}
        assert body["not_ready"] == []
    assert own_stack.nats is not None

    own_stack.nats.stop()
    try:
        for name in SERVICES:
            url = own_stack.url(name)
            response = wait_until(
                lambda: _answering(url, 503),  # noqa: B023 - called before the loop moves on
                timeout=20.0,
                what=f"{name} /readyz says 503",
            )
            body = response.json()
            assert body["status"] == "not_ready"
            assert body["not_ready"] == ["nats"], body
            assert body["checks"]["database"] is True and body["checks"]["policy"] is True
            # Liveness is not readiness: the process still answers.
            assert httpx.get(f"{url}/healthz", timeout=5.0).status_code == 200
    finally:
        own_stack.start_nats()

    for name in SERVICES:
        url = own_stack.url(name)
        wait_until(
            lambda: _answering(url, 200),  # noqa: B023 - called before the loop moves on
            timeout=30.0,
            what=f"{name} /readyz back to 200",
        )


def test_every_log_line_is_json(own_stack: Stack) -> None:
    """After start-up, demo data and a NATS outage (when run after the test above): every line
    of every service's log file, uvicorn's and the libraries' included, is one JSON object."""
    from_stdlib = 0
    for name in (*SERVICES, CONSOLE):
        path = own_stack.workdir / "logs" / f"{name}.log"
        lines = path.read_text().splitlines()
        # The console logs nothing at info in a quiet run; the five services always do.
        assert lines or name == CONSOLE, f"{path} is empty"
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise AssertionError(f"{path}:{number} is not JSON: {line!r}") from None
            assert isinstance(record, dict), line
            assert {"event", "level", "timestamp"} <= set(record), line
            from_stdlib += "logger" in record
    # Alembic's lines at start-up, for one: the standard library's logging renders as JSON too.
    assert from_stdlib, "no line from the standard library's logging"
