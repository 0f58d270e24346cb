"""Signed checkpoints of the chain head, kept outside audit's database (a stream and a file)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import structlog
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from sqlalchemy import select

from libs.common.audit_chain import (
    Checkpoint,
    checkpoint_line,
    make_checkpoint,
    read_checkpoint,
)
from libs.common.bus import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT
from libs.common.errors import Conflict
from libs.common.principals import Principal
from libs.common.resources import AuditLog
from libs.common.runtime import ServiceRuntime
from libs.common.signing import EventPublicKey
from services.audit.events import CheckpointRequested
from services.audit.models import AuditRecord
from services.audit.schemas import CheckpointRead
from services.audit.settings import AuditSettings, audit_settings

log = structlog.get_logger("audit.checkpoints")

CHECKPOINTS = Counter("onbehalf_audit_checkpoints_total", "Signed checkpoints published")
CHECKPOINT_FAILURES = Counter(
    "onbehalf_audit_checkpoint_failures_total", "Periodic checkpoints that could not be published"
)


def checkpoint_file(settings: AuditSettings) -> Path:
    return settings.checkpoint_file or settings.data_dir / "audit-checkpoints.jsonl"


async def chain_head(runtime: ServiceRuntime) -> tuple[int, str] | None:
    """(seq, hash) of the newest record, or None for an empty chain."""
    async with runtime.reading() as session:
        row = (
            await session.execute(
                select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
            )
        ).first()
    return (int(row[0]), str(row[1])) if row else None


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class ChainDiverged(Conflict):
    """The chain no longer holds the last published checkpoint: signing its head now would
    vouch for a rewritten or truncated log."""


async def check_extends(
    runtime: ServiceRuntime, keys: dict[str, EventPublicKey], head: tuple[int, str]
) -> None:
    """ChainDiverged unless the record at the last published checkpoint's seq still has its
    hash (one indexed read): a new checkpoint only ever extends the previous one."""
    previous = await latest_published(runtime, keys)
    if previous is None:
        return
    async with runtime.reading() as session:
        at = await session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == previous.seq))
    if head[0] < previous.seq or at != previous.head:
        raise ChainDiverged(
            f"the chain no longer holds the checkpoint of {previous.time} (seq {previous.seq}): "
            "it was rewritten or truncated; not signing its head"
        )


async def publish_checkpoint(
    runtime: ServiceRuntime,
    settings: AuditSettings,
    keys: dict[str, EventPublicKey],
    head: tuple[int, str],
) -> Checkpoint:
    """Sign (seq, head, now) with audit's key; append it to the file, then to the stream."""
    await check_extends(runtime, keys, head)
    seq, digest = head
    checkpoint = make_checkpoint(
        seq=seq, head=digest, time=datetime.now(UTC), key=runtime.signing_key
    )
    line = checkpoint_line(checkpoint)
    await asyncio.to_thread(_append_line, checkpoint_file(settings), line)
    await runtime.js.publish(
        CHECKPOINT_SUBJECT,
        line.encode(),
        stream=CHECKPOINT_STREAM,
        headers={"Nats-Msg-Id": f"checkpoint-{seq}-{digest[:16]}-{checkpoint.time}"},
    )
    CHECKPOINTS.inc()
    return checkpoint


async def latest_published(
    runtime: ServiceRuntime, keys: dict[str, EventPublicKey]
) -> Checkpoint | None:
    """The newest checkpoint in the AUDIT_CHECKPOINTS stream, signature checked (raises
    SignatureProblem if it does not verify), or None when there is none yet."""
    try:
        message = await runtime.js.get_last_msg(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT)
    except NotFoundError:
        return None
    return read_checkpoint(json.loads(message.data or b"null"), keys)


async def checkpoint_now(
    *,
    runtime: ServiceRuntime,
    keys: dict[str, EventPublicKey],
    principal: Principal,
) -> CheckpointRead:
    """On demand: a reviewer has the current head signed and published now."""
    settings = audit_settings(runtime)
    runtime.authorizer.authorize(principal, "checkpoint", AuditLog())
    head = await chain_head(runtime)
    if head is None:
        raise Conflict("the audit chain is empty: there is no head to checkpoint")
    checkpoint = await publish_checkpoint(runtime, settings, keys, head)
    # Who asked is itself audited (the checkpoint is not a change to the chain, the request is).
    async with runtime.unit_of_work() as uow:
        uow.publish(CheckpointRequested(seq=checkpoint.seq, head=checkpoint.head), principal)
    return CheckpointRead(
        seq=checkpoint.seq, head=checkpoint.head, time=checkpoint.time, document=checkpoint.document
    )


async def checkpoint_periodically(
    runtime: ServiceRuntime, settings: AuditSettings, keys: dict[str, EventPublicKey]
) -> None:
    """Every `checkpoint_interval_seconds`, a checkpoint if the head moved since the last one."""
    last: tuple[int, str] | None = None
    while True:
        await asyncio.sleep(settings.checkpoint_interval_seconds)  # the period itself
        try:
            head = await chain_head(runtime)
            if head is not None and head != last:
                await publish_checkpoint(runtime, settings, keys, head)
                last = head
        except asyncio.CancelledError:
            raise
        except ChainDiverged as exc:
            # Loud and repeated: a reviewer must look (docs/audit.md, "Checkpoints").
            CHECKPOINT_FAILURES.inc()
            log.error("checkpoint_refused_chain_diverged", problem=exc.detail)
        except Exception as exc:  # NATS or the database away: the next period tries again
            CHECKPOINT_FAILURES.inc()
            log.warning("checkpoint_failed", error=repr(exc))
