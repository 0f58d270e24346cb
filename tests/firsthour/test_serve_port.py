"""`ONBEHALF_HOST` / `ONBEHALF_PORT` are read: `onbehalf serve <service>` listens there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from onbehalf.stack import PROJECT_ROOT, Stack, free_port
from tests.support import wait_until


def test_onbehalf_serve_listens_on_onbehalf_port(own_stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **own_stack.service_env("catalog"), "ONBEHALF_PORT": str(port)}
    env["ONBEHALF_HOST"] = "127.0.0.1"
    command = [str(Path(sys.executable).parent / "onbehalf"), "serve", "catalog"]
    with (tmp_path / "catalog.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "catalog.log").read_text())
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0).is_success
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60.0, interval=0.1, what="onbehalf serve catalog on its port")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["service"] == "catalog"
    finally:
        process.terminate()
        process.wait(timeout=15)
