"""`onbehalf policy …`: test, check and explain the policies in policies/."""

from __future__ import annotations

import logging
from pathlib import Path

import structlog
import typer
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from libs.common.authz import Authorizer, PolicyError, load_policy, policy_files
from libs.common.settings import default_policy_dir
from onbehalf.policy_tables import (
    RowResult,
    TableError,
    evaluate,
    explain,
    find_pair,
    load_tables,
    policy_actions,
    policy_deny_reasons,
)

policy_app = typer.Typer(no_args_is_help=True, help=__doc__)

POLICY_DIR_HELP = "Folder of *.polar files (default: the policies/ folder of this installation)"
TABLES_HELP = "Folder of decision tables, *.yaml (default: POLICY_DIR/tests)"


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        # Piped into CI logs or a file: wide enough that reasons are not folded into columns.
        console.width = max(console.width, 200)
    return console


def _setup(policy_dir: Path | None) -> Path:
    if not structlog.is_configured():
        # Each decision logs at info; a reviewer's terminal should show only problems. The
        # stdlib factory finds stderr when it writes, so a test runner swapping streams is safe.
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.stdlib.LoggerFactory(),
        )
    return policy_dir if policy_dir is not None else default_policy_dir()


def _authorizer(policy_dir: Path, console: Console) -> Authorizer:
    try:
        return Authorizer(policy_dir)
    except PolicyError as exc:
        console.print(Text(f"policy error: {exc}", style="red"))
        raise typer.Exit(1) from exc


@policy_app.command()
def test(
    policy_dir: Path | None = typer.Option(None, "--policy-dir", help=POLICY_DIR_HELP),
    tables_dir: Path | None = typer.Option(None, "--tables", help=TABLES_HELP),
) -> None:
    """Decide every row of the decision tables with the policy; exit 1 on any failure."""
    policy_dir = _setup(policy_dir)
    console = _console()
    authorizer = _authorizer(policy_dir, console)
    try:
        tables, errors = load_tables(tables_dir or policy_dir / "tests")
    except TableError as exc:
        console.print(Text(str(exc), style="red"))
        raise typer.Exit(1) from exc
    results = evaluate(authorizer, tables)

    grid = RichTable(title=f"policy revision {authorizer.revision}")
    for column in ("file", "principal", "action", "resource", "expected", "got", "reason", ""):
        grid.add_column(column)
    for result in results:
        grid.add_row(*_cells(result))
    console.print(grid)
    for error in errors:
        console.print(Text(f"malformed table: {error}", style="red"))
    if not errors:
        # With a table missing, uncovered reasons are expected; the error says enough.
        _coverage_notes(console, policy_dir, results)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed", markup=False)
    if failed or errors:
        raise typer.Exit(1)


def _cells(result: RowResult) -> list[Text]:
    row = result.row
    reason = Text(result.reason or "")
    if not result.passed and row.expected == "deny" and result.reason != row.reason:
        reason.append(f"\nexpected: {row.reason}", style="yellow")
    verdict = Text("PASS", style="green") if result.passed else Text("FAIL", style="bold red")
    return [
        Text(f"{row.file}:{row.line}"),
        Text(row.principal),
        Text(row.action),
        Text(row.resource),
        Text(row.expected),
        Text(result.got, style="" if result.got == row.expected else "bold red"),
        reason,
        verdict,
    ]


def _coverage_notes(console: Console, policy_dir: Path, results: list[RowResult]) -> None:
    """Point at what no row exercises: a new reason or action without a row is a blind spot."""
    reasons = policy_deny_reasons(policy_dir) - {r.row.reason for r in results}
    actions = policy_actions(policy_dir) - {r.row.action for r in results}
    for reason in sorted(reasons):
        console.print(Text(f"note: no row expects the deny reason {reason!r}", style="yellow"))
    for action in sorted(actions):
        console.print(Text(f"note: no row uses the action {action!r}", style="yellow"))


@policy_app.command()
def check(
    policy_dir: Path | None = typer.Option(None, "--policy-dir", help=POLICY_DIR_HELP),
) -> None:
    """Load the policy with every class registered; warnings count as errors."""
    policy_dir = _setup(policy_dir)
    console = _console()
    try:
        _, revision = load_policy(policy_dir)
        count = len(policy_files(policy_dir))
    except PolicyError as exc:
        console.print(Text(f"policy error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    console.print(f"policy OK, revision {revision}, {count} files", markup=False)


@policy_app.command(name="explain")
def explain_command(
    principal: str = typer.Option(
        ...,
        "--principal",
        help="A principal name from the tables (name or table:name) or inline JSON",
    ),
    action: str = typer.Option(..., "--action", help="The action, e.g. act_full"),
    resource: str = typer.Option(
        ...,
        "--resource",
        help="A resource name from the tables (name or table:name) or inline JSON",
    ),
    policy_dir: Path | None = typer.Option(None, "--policy-dir", help=POLICY_DIR_HELP),
    tables_dir: Path | None = typer.Option(None, "--tables", help=TABLES_HELP),
    full_trace: bool = typer.Option(
        False, "--full-trace", help="Also print Oso's whole trace (it shows the principal's data)"
    ),
) -> None:
    """Decide one question and show which rules (file:line) produced the answer."""
    policy_dir = _setup(policy_dir)
    console = _console()
    authorizer = _authorizer(policy_dir, console)
    try:
        needs_tables = not (
            principal.lstrip().startswith("{") and resource.lstrip().startswith("{")
        )
        tables, errors = (
            load_tables(tables_dir or policy_dir / "tests") if needs_tables else ([], [])
        )
        for error in errors:
            console.print(Text(f"malformed table (ignored): {error}", style="yellow"))
        subject, target = find_pair(principal, resource, tables=tables)
    except TableError as exc:
        console.print(Text(str(exc), style="red"))
        raise typer.Exit(2) from exc

    result = explain(authorizer, subject, action, target)
    decision = result.decision
    verdict = "allowed" if decision.allowed else "denied"
    console.print(Text(f"{verdict}", style="bold green" if decision.allowed else "bold red"))
    console.print(Text(f"principal: {subject!r}"))
    console.print(Text(f"action:    {action}"))
    console.print(Text(f"resource:  {target!r}"))
    if decision.reason is not None:
        console.print(Text(f"reason:    {decision.reason}"))
    console.print(Text(f"policy revision: {decision.revision}"))
    if decision.allowed:
        console.print("rules that allowed it:")
        for ref in result.matched:
            console.print(Text(f"  {'  ' * ref.depth}{ref.location}  {ref.head}"))
    else:
        if result.considered:
            console.print("allow rules for these types, none of which matched:")
            for ref in result.considered:
                console.print(Text(f"  {ref.location}  {ref.head}"))
        else:
            console.print(
                Text(
                    f"no allow rule is written for {type(subject).__name__} / {action} / "
                    f"{type(target).__name__}"
                )
            )
        if result.reason_rule is not None:
            console.print("reason given by:")
            console.print(Text(f"  {result.reason_rule.location}  {result.reason_rule.head}"))
        else:
            console.print("reason given by: the authorizer (no deny_reason rule matched)")
    if full_trace:
        console.rule("Oso trace (POLAR_LOG=1)")
        for line in result.trace:
            console.print(Text(line))
