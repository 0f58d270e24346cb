"""ONBEHALF_LOG_FORMAT: every line JSON (`json`) or every line plain (`console`), the standard
library's records (uvicorn, nats-py, Alembic, warnings) included. Run in a process of its own:
configuring logging is global to a process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import logging, sys, warnings, structlog
from libs.common.logging import configure_logging
configure_logging("info", service="probe", fmt=sys.argv[1])
structlog.get_logger("probe").info("from_structlog", answer=42)
logging.getLogger("uvicorn.error").info("from uvicorn")
logging.getLogger("nats.aio.client").error("from nats-py")
warnings.warn("from warnings")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("probe").exception("with a traceback")
"""


def run(fmt: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == ""
    return done.stderr.splitlines()


def test_json_every_line_an_object_stdlib_included() -> None:
    records = [json.loads(line) for line in run("json")]
    events = [record["event"] for record in records]
    assert events[:3] == ["from_structlog", "from uvicorn", "from nats-py"]
    assert any("from warnings" in event for event in events)
    assert (
        records[-1]["event"] == "with a traceback"
        and "ZeroDivisionError" in records[-1]["exception"]
    )
    assert all(record["service"] == "probe" for record in records)
    assert records[1]["logger"] == "uvicorn.error"


@pytest.mark.parametrize("fmt", ["console"])
def test_console_every_line_plain(fmt: str) -> None:
    lines = run(fmt)
    assert any("from_structlog" in line and "answer=42" in line for line in lines)
    assert any("from uvicorn" in line for line in lines)
    for line in lines:
        assert not line.startswith("{"), line
