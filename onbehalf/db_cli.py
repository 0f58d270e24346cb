"""`onbehalf db …`: apply, inspect and write the Alembic migrations of each service's database."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import structlog
import typer

from libs.common.migrations import (
    SERVICES,
    MigrationError,
    current,
    head_revision,
    new_revision,
    upgrade,
)

db_app = typer.Typer(no_args_is_help=True, help=__doc__)

SERVICE_HELP = f"One of {', '.join(SERVICES)}; repeat it for several (default: all five)"
URL_HELP = (
    "SQLAlchemy URL of ONE service's database (needs --service), e.g. "
    "postgresql+asyncpg://user:pw@host/identity; default: the SQLite files of --data-dir"
)
DATA_DIR_HELP = "The `onbehalf run` data folder: its SQLite databases are <dir>/db/<service>.db"


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def _quiet_logs() -> None:
    # The commands print their own results; library info lines would only repeat them.
    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.stdlib.LoggerFactory(),
        )


def _targets(
    services: list[str] | None, database_url: str | None, data_dir: Path
) -> list[tuple[str, str, Path | None]]:
    """(service, url, SQLite file or None) for every service the command is about."""
    chosen = services or list(SERVICES)
    unknown = [name for name in chosen if name not in SERVICES]
    if unknown:
        raise _fail(f"unknown service {', '.join(unknown)}; one of {', '.join(SERVICES)}")
    if database_url is not None:
        if len(chosen) != 1:
            # Each service owns its database: one URL cannot be all of them.
            raise _fail("--database-url names one service's database: add --service NAME")
        return [(chosen[0], database_url, None)]
    targets: list[tuple[str, str, Path | None]] = []
    for name in chosen:
        path = (data_dir / "db" / f"{name}.db").resolve()
        targets.append((name, f"sqlite+aiosqlite:///{path}", path))
    return targets


@db_app.command("upgrade")
def upgrade_command(
    service: list[str] | None = typer.Option(None, "--service", "-s", help=SERVICE_HELP),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="DATABASE_URL", help=URL_HELP
    ),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help=DATA_DIR_HELP),
    revision: str = typer.Option("head", help="Target revision (default: the newest)"),
) -> None:
    """Bring databases to the newest revision (what every service does at start-up)."""
    _quiet_logs()
    failed = False
    for name, url, _path in _targets(service, database_url, data_dir):
        try:
            result = asyncio.run(upgrade(url, name, revision))
        except (MigrationError, OSError) as exc:
            typer.echo(f"{name}: FAILED {exc}", err=True)
            failed = True
            continue
        before = ", ".join(result.before) or "empty"
        after = ", ".join(result.after)
        adopted = " (adopted a create_all database at the baseline)" if result.adopted else ""
        change = f"{before} -> {after}" if result.before != result.after else f"at {after}"
        typer.echo(f"{name}: {change}{adopted}")
    if failed:
        raise typer.Exit(1)


@db_app.command("current")
def current_command(
    service: list[str] | None = typer.Option(None, "--service", "-s", help=SERVICE_HELP),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="DATABASE_URL", help=URL_HELP
    ),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Show each database's revision and the code's head; exit 1 if one is behind."""
    _quiet_logs()
    behind = False
    for name, url, path in _targets(service, database_url, data_dir):
        if path is not None and not path.is_file():
            # Opening a missing SQLite file would create it; say so instead.
            typer.echo(f"{name}: no database at {path} (head {head_revision(name)})")
            behind = True
            continue
        state = asyncio.run(current(url, name))
        at = ", ".join(state.database) or "no revision (empty, or made by create_all)"
        status = "up to date" if state.up_to_date else f"behind head {state.head}"
        typer.echo(f"{name}: {at} ({status})")
        behind = behind or not state.up_to_date
    if behind:
        raise typer.Exit(1)


@db_app.command("revision")
def revision_command(
    service: str = typer.Option(..., "--service", "-s", help="The service whose models changed"),
    message: str = typer.Option(..., "--message", "-m", help="What the revision changes"),
    empty: bool = typer.Option(False, help="An empty revision to fill by hand (data migrations)"),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="Compare against this database (at head) instead of a scratch SQLite one",
    ),
) -> None:
    """Write the next revision of SERVICE: models compared with a scratch database at head."""
    _quiet_logs()
    if service not in SERVICES:
        raise _fail(f"unknown service {service}; one of {', '.join(SERVICES)}")
    try:
        path = new_revision(service, message, autogenerate=not empty, database_url=database_url)
    except MigrationError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{service}: wrote {path}")
    typer.echo("review it by hand (indexes, constraints, server defaults), then test and commit")
