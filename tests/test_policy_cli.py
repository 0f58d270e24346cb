"""`onbehalf policy test|check|explain` against the real policies and broken copies of them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.common.settings import default_policy_dir
from onbehalf.cli import app
from onbehalf.policy_tables import load_tables

POLICY_DIR = default_policy_dir()
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["policy", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """policies/ with its tables, copied so a test may break it."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return copy


def test_policy_test_passes_on_the_real_policies() -> None:
    code, output = run("test")
    tables, errors = load_tables(POLICY_DIR / "tests")
    assert not errors
    rows = sum(len(t.rows) for t in tables)
    assert code == 0, output
    summary = SUMMARY.search(output)
    assert summary is not None, output
    assert summary.groups() == (str(rows), "0")
    assert "PASS" in output and "FAIL" not in output


def test_policy_test_fails_when_the_caretaker_condition_is_removed(policy_copy: Path) -> None:
    polar = policy_copy / "onbehalf.polar"
    # The full-acting rule without "is a caretaker of the organisation": the permission
    # alone would let a rep act for every customer.
    caretaker_rule = re.compile(
        r"may_act_fully\(staff: StaffUser, org: CustomerOrg\) if\s+"
        # (written as a membership, so the customer list can derive its filter from it)
        r"(?:org\.has_caretaker\(staff\.id\)|staff\.id in org\.caretaker_ids) and\s+"
    )
    text = polar.read_text()
    assert caretaker_rule.search(text), "the caretaker rule changed; update this test"
    polar.write_text(
        caretaker_rule.sub("may_act_fully(staff: StaffUser, _org: CustomerOrg) if\n    ", text)
    )

    code, output = run("test", "--policy-dir", str(policy_copy))

    assert code == 1, output
    summary = SUMMARY.search(output)
    assert summary is not None, output
    assert int(summary.group(2)) > 0
    failed_rows = [line for line in output.splitlines() if "FAIL" in line]
    assert any("rep_full" in line and "act_full" in line for line in failed_rows), output
    assert any("acting.yaml" in line for line in failed_rows), output


def test_policy_test_names_file_and_row_of_a_malformed_table(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "broken.yaml").write_text(
        "principals:\n"
        "  rep: {type: StaffUser, id: rep-1}\n"
        "resources:\n"
        "  acme: {type: CustomerOrg, id: acme}\n"
        "rows:\n"
        "  - {principal: rep, action: act_full, resource: acme, expected: deny,\n"
        "     reason: not a caretaker of this customer organisation, why: ok}\n"
        "  - {principal: ghost, action: act_full, resource: acme, expected: allow, why: x}\n"
    )
    code, output = run("test", "--tables", str(tables))
    assert code == 1
    assert "broken.yaml:8: row 2" in output
    assert "unknown principal 'ghost'" in output


def test_policy_check_accepts_the_real_policies() -> None:
    code, output = run("check")
    assert code == 0, output
    count = len(list(POLICY_DIR.glob("*.polar")))
    assert re.search(rf"^policy OK, revision [0-9a-f]{{16}}, {count} files$", output, re.M)


def _append(path: Path, rule: str) -> int:
    """Append `rule` to a policy file; the line number it lands on."""
    text = path.read_text().rstrip("\n") + "\n\n"
    path.write_text(text + rule + "\n")
    return text.count("\n") + 1


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('allow(actor: StaffUser, "x", r: Catalog) if actor.id = ;', "did not expect"),
        ('allow(actor: StaffUser, "x", r: Nonexistent);', "Singleton variable"),
        ('allow(_actor: StaffUser, "x", _r: Nonexistent);', "Unknown specializer Nonexistent"),
    ],
    ids=["syntax-error", "misspelled-rule", "unknown-class-warning"],
)
def test_policy_check_names_file_and_line(policy_copy: Path, rule: str, message: str) -> None:
    line = _append(policy_copy / "onbehalf.polar", rule)
    code, output = run("check", "--policy-dir", str(policy_copy))
    assert code == 1
    assert f"onbehalf.polar:{line}:" in output, output
    assert message in output


def test_policy_check_finds_the_file_when_oso_does_not_name_it(policy_copy: Path) -> None:
    # Oso reports a missing has_role without any location.
    (policy_copy / "zz_roles.polar").write_text(
        "# a resource block with roles needs a has_role rule\n\nresource Catalog {\n"
        '    roles = ["editor"];\n    permissions = ["edit"];\n    "edit" if "editor";\n}\n'
    )
    code, output = run("check", "--policy-dir", str(policy_copy))
    assert code == 1
    assert "zz_roles.polar:4:" in output, output
    assert "has_role" in output


def test_policy_explain_shows_the_rules_of_an_allowed_caretaker() -> None:
    code, output = run(
        "explain", "--principal", "rep_full", "--action", "act_full", "--resource", "acme"
    )
    assert code == 0, output
    assert output.splitlines()[0] == "allowed"
    assert re.search(r"onbehalf\.polar:\d+\s+allow\(staff: StaffUser\{\}, \"act_full\"", output)
    assert re.search(r"onbehalf\.polar:\d+\s+may_act_fully\(", output)
    assert "policy revision: " in output


def test_policy_explain_shows_the_reason_rule_of_a_denial() -> None:
    code, output = run(
        "explain",
        "--principal",
        '{"type": "StaffUser", "id": "u1", "roles": ["sales_rep"], "permissions": []}',
        "--action",
        "act_full",
        "--resource",
        '{"type": "CustomerOrg", "id": "o1", "caretaker_ids": ["u1"]}',
    )
    assert code == 0, output
    assert output.splitlines()[0] == "denied"
    assert "reason:    missing permission place_orders_as_customer" in output
    assert re.search(r"reasons\.polar:\d+\s+deny_reason\(", output), output


def test_policy_explain_rejects_an_unknown_name() -> None:
    code, output = run("explain", "--principal", "nobody", "--action", "read", "--resource", "x")
    assert code == 2
    assert "no principal named 'nobody'" in output
