"""Start-up against a bus that is not there: a clear refusal in time, never a hang."""

from __future__ import annotations

import subprocess
from pathlib import Path

from libs.common.signing import public_keys_path, signing_key_path, write_event_keys
from onbehalf.stack import free_port, start_service


def test_a_service_exits_when_nats_cannot_be_reached_in_time(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    write_event_keys(secrets, ["catalog"])
    service = start_service(
        "catalog",
        port=free_port(),
        env={
            "NATS_URL": f"nats://127.0.0.1:{free_port()}",  # nobody listens there
            "ONBEHALF_STARTUP_TIMEOUT_SECONDS": "2",
            "ONBEHALF_DATA_DIR": str(tmp_path / "db"),
            "ONBEHALF_EVENT_SIGNING_KEY_FILE": str(signing_key_path(secrets, "catalog")),
            "ONBEHALF_EVENT_PUBLIC_KEYS_FILE": str(public_keys_path(secrets)),
        },
        log_dir=tmp_path / "logs",
    )
    try:
        # Before, the first connection was retried forever and the process never exited.
        code = service.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        service.kill()
        raise AssertionError("the service still runs long after its start-up timeout") from None
    assert code != 0
    assert "cannot reach NATS at" in service.log_path.read_text()
