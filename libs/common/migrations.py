"""Alembic migrations, one history per service: locked upgrade, adoption of create_all databases."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import weakref
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, event, inspect, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from libs.common.db import UtcDateTime, is_sqlite

log = structlog.get_logger("migrations")

SERVICES: tuple[str, ...] = ("identity", "catalog", "cart", "orders", "audit")
# Revision ids are "<service>_<NNNN>": readable, valid module names (mypy checks the files),
# and two revisions written in parallel after the same head collide loudly instead of
# silently forking the history.
_REV_ID = re.compile(r"^(?P<service>[a-z]+)_(?P<number>\d{4})$")
# ConfigParser interpolation: "%%" is a literal "%".
_FILE_TEMPLATE = "%%(rev)s_%%(slug)s"
T = TypeVar("T")


class MigrationError(RuntimeError):
    """A database the migrations refuse to touch, or a history that is not one straight line."""


@dataclass(frozen=True)
class UpgradeResult:
    service: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    adopted: bool


@dataclass(frozen=True)
class CurrentState:
    service: str
    database: tuple[str, ...]
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.database == (self.head,)


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise MigrationError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")


def migrations_dir(service: str) -> Path:
    """The service's migrations folder, found through its package (works from an install too)."""
    _check_service(service)
    package = importlib.import_module(f"services.{service}.migrations")
    if package.__file__ is None:
        raise MigrationError(f"services.{service}.migrations has no folder")
    return Path(package.__file__).parent


def alembic_config(service: str, connection: Connection | None = None) -> Config:
    """A Config built in code: no alembic.ini; env.py takes `connection` from its attributes."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    config.set_main_option("file_template", _FILE_TEMPLATE)
    config.attributes["service"] = service
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory(service: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(service))


def head_revision(service: str) -> str:
    """The one head of the service's history; several heads (a fork) is an error to fix first."""
    script = script_directory(service)
    files = [
        path.name
        for path in (migrations_dir(service) / "versions").glob("*.py")
        if path.name != "__init__.py"
    ]
    known = {revision.revision: revision for revision in script.walk_revisions()}
    if len(files) != len(known):
        # Alembic only warns when two files carry the same id and keeps one of them: two
        # revisions written in parallel after the same head would silently lose one.
        named = sorted(Path(r.path).name for r in known.values())
        raise MigrationError(
            f"{service}: {len(files)} revision files but {len(known)} revisions; two share an "
            f"id (files not in the history: {sorted(set(files) - set(named))}); write yours "
            "again with `onbehalf db revision` so it chains after the other"
        )
    heads = script.get_heads()
    if len(heads) != 1:
        raise MigrationError(
            f"{service}: {len(heads)} migration heads {sorted(heads)}; chain the newer revision "
            "after the other (set its down_revision) so the history is one line"
        )
    return heads[0]


def baseline_revision(service: str) -> Script:
    """The first revision: the schema that create_all made before there were migrations."""
    script = script_directory(service)
    base = script.get_base()
    if base is None:
        raise MigrationError(f"{service}: no baseline revision")
    revision = script.get_revision(base)
    if revision is None:  # pragma: no cover - get_base() named it
        raise MigrationError(f"{service}: baseline {base} not found")
    return revision


def lock_key(service: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock, one per service."""
    return zlib.crc32(f"onbehalf.migrations.{service}".encode()) | (0x6F6E << 32)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Write UtcDateTime as the column type it stores, so revisions do not import app code."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_env(metadata: MetaData) -> None:
    """The body of every service's env.py: migrate on the connection `upgrade()` passes in."""
    from alembic import context

    options: dict[str, Any] = {
        "target_metadata": metadata,
        # Batch operations are plain ALTERs on PostgreSQL and a table copy on SQLite, so one
        # rendered script runs on both.
        "render_as_batch": True,
        "render_item": render_item,
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise MigrationError(
            "run migrations through `onbehalf db` or libs.common.migrations, not the alembic CLI"
        )
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


def migration_engine(url: str) -> AsyncEngine:
    """An engine for schema changes only; on SQLite, foreign keys are off while tables are copied."""
    if not is_sqlite(url):
        # One connection for one upgrade, closed with it: no pool left behind in a service.
        return create_async_engine(url, poolclass=NullPool)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        # A batch migration drops and re-creates a table that others reference: with foreign
        # keys on, that DROP would cascade or fail. They are checked after the upgrade instead.
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # The write lock up front: a second process migrating the same file waits here.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _alembic_turn() -> asyncio.Lock:
    # Alembic's `context` and `op` are process-wide proxies: two runs interleaving on one event
    # loop (each awaiting its database) would send one's operations to the other's connection.
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = asyncio.Lock()
    return turn


async def _locked(url: str, service: str, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction that holds the service's migration lock."""
    engine = migration_engine(url)
    try:
        async with _alembic_turn(), engine.begin() as connection:
            if not is_sqlite(url):
                # Replicas starting together queue here; the lock ends with the transaction,
                # and PostgreSQL's DDL is transactional, so a failed upgrade changes nothing.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(service)}
                )
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def _database_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def _adopt(connection: Connection, config: Config, service: str) -> bool:
    """Stamp a database that create_all made (tables, no alembic_version) at the baseline."""
    baseline = baseline_revision(service)
    tables: Sequence[str] = getattr(baseline.module, "ADOPTED_TABLES", ())
    existing = set(inspect(connection).get_table_names())
    present = existing.intersection(tables)
    if not present:
        return False
    missing = sorted(set(tables) - existing)
    if missing:
        raise MigrationError(
            f"{service}: the database has tables of this service but not {missing}, so it was "
            "not made by the create_all this baseline describes; refusing to adopt it "
            "(start it once with the version it came from, or restore a backup)"
        )
    command.stamp(config, baseline.revision)
    return True


def _upgrade_sync(connection: Connection, service: str, revision: str) -> UpgradeResult:
    config = alembic_config(service, connection)
    before = _database_heads(connection)
    adopted = not before and _adopt(connection, config, service)
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        # E.g. a database at a revision this code does not know: a newer release migrated it.
        raise MigrationError(f"{service}: {exc}") from exc
    after = _database_heads(connection)
    if is_sqlite(str(connection.engine.url)):
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise MigrationError(f"{service}: foreign keys broken by the upgrade: {broken[:5]}")
    if adopted:
        drift = compare_metadata(MigrationContext.configure(connection), _metadata(service))
        if drift:
            log.warning("adopted_schema_drift", service=service, differences=repr(drift)[:2000])
    return UpgradeResult(service=service, before=before, after=after, adopted=adopted)


def _metadata(service: str) -> MetaData:
    models = importlib.import_module(f"services.{service}.models")
    metadata: MetaData = models.Base.metadata
    return metadata


async def upgrade(url: str, service: str, revision: str = "head") -> UpgradeResult:
    """Bring the service's database to `revision`, adopting a create_all database first."""
    _check_service(service)
    head_revision(service)  # a forked history fails here, before any lock is taken
    result = await _locked(url, service, lambda c: _upgrade_sync(c, service, revision))
    if result.before != result.after or result.adopted:
        log.info(
            "database_migrated",
            service=service,
            before=list(result.before),
            after=list(result.after),
            adopted=result.adopted,
        )
    return result


async def current(url: str, service: str) -> CurrentState:
    """Which revision the database is at, and the head of the code's history."""
    _check_service(service)
    head = head_revision(service)
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            heads = await connection.run_sync(_database_heads)
    finally:
        await engine.dispose()
    return CurrentState(service=service, database=heads, head=head)


async def drift(url: str, service: str) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty: none)."""
    engine = migration_engine(url)
    metadata = _metadata(service)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: list(
                    compare_metadata(
                        MigrationContext.configure(
                            c, opts={"compare_type": True, "render_item": render_item}
                        ),
                        metadata,
                    )
                )
            )
    finally:
        await engine.dispose()


def next_revision_id(service: str) -> str:
    head = head_revision(service)
    match = _REV_ID.match(head)
    if match is None or match["service"] != service:
        raise MigrationError(f"{service}: head {head!r} is not named <service>_<NNNN>")
    return f"{service}_{int(match['number']) + 1:04d}"


def new_revision(
    service: str, message: str, *, autogenerate: bool = True, database_url: str | None = None
) -> Path:
    """Write the next revision after the head; autogenerated against a scratch database at head."""
    _check_service(service)
    rev_id = next_revision_id(service)

    def _write(connection: Connection, *, scratch: bool) -> Path:
        config = alembic_config(service, connection)
        if scratch:
            command.upgrade(config, "head")
        written = command.revision(
            config, message=message, autogenerate=autogenerate, rev_id=rev_id
        )
        if not isinstance(written, Script):
            raise MigrationError(f"{service}: alembic wrote {written!r}, expected one script")
        return Path(written.path)

    if database_url is not None:
        # Compared as it is: autogenerate refuses a database that is not at the head.
        path = asyncio.run(_locked(database_url, service, lambda c: _write(c, scratch=False)))
    else:
        with tempfile.TemporaryDirectory(prefix=f"onbehalf-{service}-revision-") as scratch:
            url = f"sqlite+aiosqlite:///{Path(scratch) / (service + '.db')}"
            path = asyncio.run(_locked(url, service, lambda c: _write(c, scratch=True)))
    _tidy(path)
    return path


def _tidy(path: Path) -> None:
    """Format and lint-fix a written revision with the project's ruff, when it is installed."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return
    for arguments in (["format", "--quiet"], ["check", "--fix", "--quiet"]):
        subprocess.run([ruff, *arguments, str(path)], check=False, timeout=60)


def has_migrations(service: str) -> bool:
    """Whether `service` has a migration history (a test double or a new service may not)."""
    return (
        service in SERVICES
        and importlib.util.find_spec(f"services.{service}.migrations") is not None
    )
