"""The README's "five requests" run verbatim: the shell block is taken from README.md and run
with bash against a stack with the demo data, the URLs given through the variables it defines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from onbehalf.stack import PROJECT_ROOT, Stack

HEADING = "## Acting on behalf of a customer, in five requests"


def readme_block() -> str:
    text = (Path(PROJECT_ROOT) / "README.md").read_text()
    section = text[text.index(HEADING) :]
    match = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert match, "no ```sh block under the five requests"
    return match.group(1)


def _objects(output: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's commands use curl")
def test_the_readme_five_requests_run_verbatim(own_stack: Stack) -> None:
    block = readme_block()
    for name in ("IDENTITY", "CATALOG", "CART", "ORDERS"):
        assert f"{name}=${{{name}:-http://127.0.0.1:" in block, f"{name} is not a variable"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **{name.upper(): own_stack.url(name) for name in ("identity", "catalog", "cart", "orders")},
    }
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    objects = _objects(done.stdout)
    listed = [item for o in objects for item in o.get("items", []) if isinstance(item, dict)]
    customers = [item for item in listed if "contract_number" in item]
    assert [c["name"] for c in customers] == ["Acme Industrial GmbH"]
    session = next(o for o in objects if "session_id" in o)
    assert session["mode"] == "full"
    assert session["subject"]["name"] == "Acme Industrial GmbH"
    (bolt,) = [i for i in listed if i.get("sku") == "BOLT-M8" and "quantity" not in i]
    assert bolt["price"] == "10.90"  # Acme's own price, not the list price 12.40
    order = next(o for o in objects if "placed_by" in o)
    assert order["customer_org_id"] == session["subject"]["org_id"]
    assert order["acting_session_id"] == session["session_id"]
    assert done.stdout.splitlines()[-1] == "204"
