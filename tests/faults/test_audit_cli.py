"""`onbehalf audit tail` and `verify` as an operator runs them, against the shared test stack."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from typer.testing import CliRunner

from devtools.stacks import seed_file
from onbehalf.cli import app
from onbehalf.stack import Stack
from tests.support import World, wait_until

ONBEHALF = str(Path(sys.executable).parent / "onbehalf")


def _collect(stream: IO[str], into: list[str]) -> None:
    into.extend(stream)  # line by line, as the process writes them


def test_tail_follows_new_events_and_stops_after_limit(stack: Stack, world: World) -> None:
    command = [ONBEHALF, "audit", "tail", "--nats-url", stack.nats_url, "--limit", "2"]
    command += ["--nats-creds", str(seed_file(stack, "operator"))]
    tail = subprocess.Popen(
        [*command, "--type", "identity.acting_session.*", "--seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        errors: list[str] = []
        threading.Thread(target=_collect, args=(tail.stderr, errors), daemon=True).start()
        # Only events after it subscribed are shown: wait for it to say so.
        wait_until(
            lambda: any("following" in line for line in errors), timeout=30.0, what="subscribed"
        )
        rep = world.login(world.rep)
        acting, started = world.act_as(rep, world.org_a)
        assert acting.delete("identity", "/v1/acting-as/current").status_code == 204
        out, _ = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0
    lines = out.splitlines()
    assert len(lines) == 2, out
    who = f"{world.rep['id']} → {world.org_a['id']}"
    session = f"session={started['session_id']}"
    assert (
        "com.onbehalf.identity.acting_session.started" in lines[0]
        and who in lines[0]
        and session in lines[0]
    )
    assert "com.onbehalf.identity.acting_session.ended" in lines[1] and session in lines[1]
    assert lines[0][:4].isdigit() and "Z" in lines[0].split()[0]  # starts with the event's time


def test_tail_stops_after_seconds_without_events(stack: Stack) -> None:
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "tail",
            "--nats-url",
            stack.nats_url,
            "--nats-creds",
            str(seed_file(stack, "operator")),
            "--type",
            "no.such.type",
            "--seconds",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "following events.no.such.type" in result.output


def test_verify_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "audit.db"
    result = CliRunner().invoke(app, ["audit", "verify", "--database-url", str(missing)])
    assert result.exit_code == 2 and "no audit database" in result.output
    assert not missing.exists()  # not created empty (an empty chain would "verify")


def test_verify_against_the_running_service_needs_a_reader(stack: Stack, world: World) -> None:
    rep = world.login(world.rep)
    result = CliRunner().invoke(
        app, ["audit", "verify", "--url", stack.url("audit"), "--token", rep.token or ""]
    )
    assert result.exit_code == 2 and "403" in result.output
