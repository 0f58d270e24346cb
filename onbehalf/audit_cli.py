"""`onbehalf audit …`: verify the audit chain and follow new events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import nats
import structlog
import typer
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common.audit_chain import (
    ChainReport,
    Checkpoint,
    last_checkpoint_in_file,
    latest_checkpoint,
    read_checkpoint,
    report_json,
    verify_engine,
)
from libs.common.bus import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT, EVENTS_STREAM, server_list
from libs.common.events import decode, nats_subject
from libs.common.signing import (
    EventPublicKey,
    SignatureProblem,
    load_public_keys,
    public_keys_path,
)
from onbehalf.nats_setup import (
    DATA_DIR_OPTION,
    NATS_CREDS_OPTION,
    nats_url_for,
    operator_credentials,
    operator_seed,
)

audit_app = typer.Typer(no_args_is_help=True, help=__doc__)

# Where `make run` (`onbehalf run --data-dir data`) keeps audit's SQLite database.
DEFAULT_DATABASE = Path("data/db/audit.db")


def _quiet_logs() -> None:
    # Library warnings (e.g. a NATS reconnect) go to stderr; stdout carries only results.
    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.stdlib.LoggerFactory(),
        )


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def database_url_of(value: str | None) -> str:
    """A SQLAlchemy URL as given, or a path to a SQLite file (which must exist)."""
    if value and "://" in value:
        return value
    path = Path(value) if value else DEFAULT_DATABASE
    if not path.is_file():
        # Opening a missing SQLite file would create an empty one, which "verifies" fine.
        raise _fail(f"no audit database at {path} (give --database-url or --url)")
    return f"sqlite+aiosqlite:///{path.resolve()}"


async def _verify_database(
    url: str,
    anchor: str | None,
    keys: dict[str, EventPublicKey] | None,
    checkpoint: Checkpoint | None,
) -> ChainReport:
    # A plain engine: no write lock for reading (the service's engine takes one on SQLite),
    # so verifying beside a running audit service never holds it up.
    engine = create_async_engine(url)
    try:
        return await verify_engine(engine, anchor=anchor, keys=keys, checkpoint=checkpoint)
    finally:
        await engine.dispose()


def _public_keys(path: Path | None) -> dict[str, EventPublicKey] | None:
    if path is None:
        return None
    try:
        return load_public_keys(path)
    except (OSError, ValueError, KeyError) as exc:
        raise _fail(f"cannot read the public event keys {path}: {exc}") from exc


async def _stream_checkpoint(
    nats_url: str, seed_file: Path | None, keys: dict[str, EventPublicKey]
) -> Checkpoint | None:
    try:
        nc = await nats.connect(
            server_list(nats_url),
            **operator_credentials(seed_file),
            name="onbehalf-audit-verify",
            connect_timeout=2,
            allow_reconnect=False,
        )
    except Exception as exc:
        raise _fail(f"cannot reach NATS at {nats_url} ({type(exc).__name__})") from exc
    try:
        message = await nc.jetstream().get_last_msg(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT)
    except NotFoundError:
        return None
    finally:
        await nc.close()
    return read_checkpoint(json.loads(message.data or b"null"), keys)


def _checkpoint(
    *,
    keys: dict[str, EventPublicKey] | None,
    checkpoints: Path | None,
    nats_url: str | None,
    seed_file: Path | None,
) -> Checkpoint | None:
    """The latest signed checkpoint from the file and/or the stream (the further along wins)."""
    if checkpoints is None and nats_url is None:
        return None
    if keys is None:
        raise _fail("checking against checkpoints needs --public-keys (audit's key signs them)")
    try:
        from_file = last_checkpoint_in_file(checkpoints, keys) if checkpoints else None
        from_stream = (
            asyncio.run(_stream_checkpoint(nats_url, seed_file, keys)) if nats_url else None
        )
    except OSError as exc:
        raise _fail(f"cannot read the checkpoint file: {exc}") from exc
    except SignatureProblem as exc:
        # A checkpoint that does not verify is itself evidence of tampering: say so, exit 1.
        typer.echo(f"BROKEN  the latest checkpoint does not verify: {exc}")
        raise typer.Exit(1) from exc
    return latest_checkpoint([from_file, from_stream])


def _verify_api(url: str, token: str | None, anchor: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"anchor": anchor} if anchor else {}
    try:
        response = httpx.get(
            url.rstrip("/") + "/v1/audit/verify", headers=headers, params=params, timeout=300.0
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the audit service at {url}: {exc}") from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise _fail(f"the audit service answered {response.status_code}: {detail}")
    body: dict[str, Any] = response.json()
    return body


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    if report["ok"]:
        typer.echo(f"ok  count={report['count']}  head={report['head']}")
        if report.get("anchor_seq") is not None:
            typer.echo(f"anchor found at seq={report['anchor_seq']}")
        if report.get("checkpoint_seq") is not None:
            typer.echo(f"signed checkpoint at seq={report['checkpoint_seq']} holds")
    elif report.get("first_broken") is not None:
        typer.echo(
            f"BROKEN  seq={report['first_broken']}  id={report['broken_id']}  "
            f"problem: {report['problem']}"
        )
        typer.echo(f"intact before it: count={report['count']}  head={report['head']}")
    else:
        typer.echo(f"BROKEN  {report['problem']}")
        typer.echo(f"chain itself intact: count={report['count']}  head={report['head']}")
    if report.get("signatures_checked"):
        typer.echo("signatures: checked (every record's emitter proved by its signature)")
    else:
        typer.echo("signatures: NOT checked (give --public-keys)")


@audit_app.command()
def verify(
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help=f"Audit's database: a SQLAlchemy URL or a SQLite file (default {DEFAULT_DATABASE})",
    ),
    url: str | None = typer.Option(
        None, "--url", help="Ask the running audit service instead, e.g. http://127.0.0.1:8005"
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="ONBEHALF_TOKEN", help="Bearer token for --url (reviewer/admin)"
    ),
    anchor: str | None = typer.Option(
        None, "--anchor", help="A head noted earlier: fail unless it is still in the chain"
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text"),
    public_keys: Path | None = typer.Option(
        None,
        "--public-keys",
        help="Every service's public event keys (public.json); default: <data-dir>/secrets/"
        "events/public.json when verifying the default database",
    ),
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints", help="Audit's checkpoint file (JSON lines): hold the chain to it"
    ),
    nats_url: str | None = typer.Option(
        None, "--nats-url", help="Also read the latest checkpoint from the AUDIT_CHECKPOINTS stream"
    ),
    nats_creds: Path | None = NATS_CREDS_OPTION,
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """Recompute the hash chain and every record's signature, hold it against the latest signed
    checkpoint; print ok, count and head, or the first broken record (exit 1)."""
    _quiet_logs()
    if url:
        report = _verify_api(url, token, anchor)
    else:
        if public_keys is None and database_url is None:
            # The default database is `make run`'s: so are its keys.
            default_keys = public_keys_path(data_dir / "secrets")
            public_keys = default_keys if default_keys.is_file() else None
        keys = _public_keys(public_keys)
        checkpoint = _checkpoint(
            keys=keys,
            checkpoints=checkpoints,
            nats_url=nats_url,
            seed_file=operator_seed(nats_creds, data_dir) if nats_url else None,
        )
        found = asyncio.run(
            _verify_database(database_url_of(database_url), anchor, keys, checkpoint)
        )
        report = report_json(found)
    _print_report(report, as_json)
    if not report["ok"]:
        raise typer.Exit(1)


@audit_app.command()
def checkpoint(
    url: str = typer.Option(
        "http://127.0.0.1:8005", "--url", help="The running audit service", envvar="AUDIT_URL"
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="ONBEHALF_TOKEN", help="Bearer token (reviewer/admin)"
    ),
    as_json: bool = typer.Option(False, "--json", help="The signed checkpoint document"),
) -> None:
    """Have audit sign its chain head now and publish it (stream and file); print it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(
            url.rstrip("/") + "/v1/audit/checkpoints", headers=headers, timeout=30
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the audit service at {url}: {exc}") from exc
    if response.status_code != 201:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise _fail(f"the audit service answered {response.status_code}: {detail}")
    body = response.json()
    if as_json:
        typer.echo(json.dumps(body["document"], sort_keys=True))
    else:
        typer.echo(f"checkpoint  seq={body['seq']}  head={body['head']}  time={body['time']}")


def format_event(payload: bytes) -> str:
    """One line per event: time, type, actor → subject, acting session."""
    try:
        event = decode(payload)
    except Exception:
        return f"(not a CloudEvent: {payload[:120]!r})"
    time = event.get_time()
    stamp = time.isoformat(timespec="milliseconds").replace("+00:00", "Z") if time else "-"
    actor = event.get_extension("actorid") or "-"
    subject = event.get_extension("subjectorgid") or "-"
    subject_user = event.get_extension("subjectuserid")
    if subject_user:
        subject = f"{subject}/{subject_user}"
    session = event.get_extension("actingsessionid") or "-"
    return f"{stamp}  {event.get_type()}  {actor} → {subject}  session={session}"


async def _tail(
    *,
    nats_url: str,
    seed_file: Path | None,
    subject: str,
    limit: int | None,
    seconds: float | None,
    from_start: bool,
    as_json: bool,
) -> int:
    async def quiet(_exc: Exception) -> None:
        return None  # reconnects are the client's business; stdout carries only events

    try:
        # Retries forever once connected; the first connection gets five seconds.
        nc = await asyncio.wait_for(
            nats.connect(
                server_list(nats_url),
                **operator_credentials(seed_file),
                name="onbehalf-audit-tail",
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                error_cb=quiet,
            ),
            timeout=5.0,
        )
    except Exception as exc:
        raise _fail(f"cannot reach NATS at {nats_url} ({type(exc).__name__})") from exc
    printed = 0
    enough = asyncio.Event()

    async def on_message(message: Msg) -> None:
        nonlocal printed
        if enough.is_set():
            return
        line = message.data.decode(errors="replace") if as_json else format_event(message.data)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        printed += 1
        if limit is not None and printed >= limit:
            enough.set()

    try:
        # An ordered consumer: ephemeral, in stream order, re-created by the client after a
        # gap or a reconnect; nothing to clean up, and no acks that could affect audit.
        subscription = await nc.jetstream().subscribe(
            subject,
            stream=EVENTS_STREAM,
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW,
        )
        typer.echo(f"following {subject} on {nats_url}", err=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), timeout=seconds)
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    return printed


@audit_app.command()
def tail(
    nats_url: str | None = typer.Option(
        None,
        "--nats-url",
        envvar="NATS_URL",
        help="NATS with JetStream (default: the one `make run` started for --data-dir)",
    ),
    event_type: str = typer.Option(
        ">",
        "--type",
        help="Event types to follow, with or without com.onbehalf.; NATS wildcards, e.g. 'orders.>'",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Stop after N events"),
    seconds: float | None = typer.Option(None, "--seconds", min=0, help="Stop after S seconds"),
    from_start: bool = typer.Option(
        False, "--from-start", help="Replay the stream from its first event, then follow"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print each CloudEvent as JSON"),
    nats_creds: Path | None = NATS_CREDS_OPTION,
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """Follow new events live from JetStream: time, type, actor → subject, session."""
    _quiet_logs()
    subject = nats_subject(event_type)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _tail(
                nats_url=nats_url_for(nats_url, data_dir),
                seed_file=operator_seed(nats_creds, data_dir),
                subject=subject,
                limit=limit,
                seconds=seconds,
                from_start=from_start,
                as_json=as_json,
            )
        )
