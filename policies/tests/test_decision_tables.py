"""The decision tables in this folder, each row decided by the real policies/*.polar."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.common.authz import Authorizer
from onbehalf.policy_tables import (
    Row,
    Table,
    explain,
    load_tables,
    policy_actions,
    policy_deny_reasons,
    policy_rules,
)

TABLE_DIR = Path(__file__).resolve().parent
POLICY_DIR = TABLE_DIR.parent
TABLES, TABLE_ERRORS = load_tables(TABLE_DIR)
ROWS: list[tuple[Table, Row]] = [(table, row) for table in TABLES for row in table.rows]


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    return Authorizer(POLICY_DIR)


def test_tables_are_well_formed() -> None:
    assert not TABLE_ERRORS, "\n".join(str(e) for e in TABLE_ERRORS)
    assert len(TABLES) >= 3


@pytest.mark.parametrize(("table", "row"), ROWS, ids=[row.id for _, row in ROWS])
def test_row(authorizer: Authorizer, table: Table, row: Row) -> None:
    decision = authorizer.decide(
        table.principals[row.principal], row.action, table.resources[row.resource]
    )
    got = "allow" if decision.allowed else "deny"
    assert got == row.expected, f"{row.why} (reason: {decision.reason})"
    if row.expected == "deny":
        assert decision.reason == row.reason, row.why


def test_every_deny_reason_is_expected_by_some_row() -> None:
    expected = {row.reason for _, row in ROWS if row.reason}
    missing = policy_deny_reasons(POLICY_DIR) - expected
    assert not missing, f"no table row expects these deny reasons: {sorted(missing)}"


def test_every_action_of_the_policy_appears_in_the_tables() -> None:
    missing = policy_actions(POLICY_DIR) - {row.action for _, row in ROWS}
    assert not missing, f"no table row uses these actions: {sorted(missing)}"


def test_every_rule_decides_some_row(authorizer: Authorizer) -> None:
    """Stronger than the reason strings: each rule (file:line) must be on the path of an
    allowed row, or give the reason of a denied row, according to Oso's own trace."""
    used: set[tuple[str, int]] = set()
    for table, row in ROWS:
        explanation = explain(
            authorizer, table.principals[row.principal], row.action, table.resources[row.resource]
        )
        refs = list(explanation.matched)
        if explanation.reason_rule is not None:
            refs.append(explanation.reason_rule)
        used.update((Path(ref.file).name, ref.line) for ref in refs)
    unused = [
        f"{file}:{line} {name}"
        for file, line, name in policy_rules(POLICY_DIR)
        if (file, line) not in used
    ]
    assert not unused, f"rules no table row exercises: {unused}"
