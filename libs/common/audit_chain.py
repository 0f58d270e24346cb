"""The audit chain as pure verification: hashes, signatures, emitters and signed checkpoints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import BigInteger, Text, column, select, table
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db import UtcDateTime
from libs.common.events import LEGACY_SOURCE_PREFIX, nats_subject, service_source
from libs.common.signing import (
    EventPublicKey,
    EventSigningKey,
    SignatureProblem,
    canonical_json,
    envelope_object,
    iso_utc,
    sign_document,
    verify_signature,
)
from libs.contracts.base import event_name

GENESIS = "0" * 64
# The service that signs checkpoints (with its event-signing key).
CHECKPOINT_SIGNER = "audit"

# Envelope attribute -> the queryable column that copies it.
COLUMNS = {
    "actorid": "actor_id",
    "actororgid": "actor_org_id",
    "subjectorgid": "subject_org_id",
    "subjectuserid": "subject_user_id",
    "actingsessionid": "acting_session_id",
    "policyrevision": "policy_revision",
}


def canonical_envelope(event: CloudEvent) -> str:
    """The event as sorted, compact JSON (signature included): what the chain stores and hashes."""
    return canonical_json(envelope_object(event))


def chain_hash(prev_hash: str, envelope: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{envelope}".encode()).hexdigest()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def emitter_of(
    envelope: Mapping[str, Any], keys: Mapping[str, EventPublicKey], *, subject: str | None = None
) -> str:
    """The service that provably emitted the event `envelope`, or SignatureProblem saying why
    none did: the signature must be valid with a key of service S, the event's type must be
    `com.onbehalf.S.<...>` and its `source` `urn:onbehalf:service:S` (or, a v1 envelope, type
    `S.<...>` with source `/onbehalf/S`: stored events keep the form they were signed in), and
    (when known) it must have come in on the NATS subject `events.S.<...>`, which only S may
    publish to."""
    service = verify_signature(envelope, keys)
    event_type = envelope.get("type")
    if not isinstance(event_type, str) or event_name(event_type).split(".", 1)[0] != service:
        raise SignatureProblem(f"signed by {service}, but type {event_type!r} is not {service}'s")
    v1 = event_type == event_name(event_type)
    expected_source = LEGACY_SOURCE_PREFIX + service if v1 else service_source(service)
    if envelope.get("source") != expected_source:
        raise SignatureProblem(
            f"signed by {service}, but source {envelope.get('source')!r} names another emitter "
            f"(expected {expected_source!r})"
        )
    if subject is not None and subject != nats_subject(event_type):
        raise SignatureProblem(f"type {event_type!r} arrived on another subject, {subject!r}")
    return service


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """A stored record as verification sees it: the hashed envelope and its queryable copies."""

    seq: int
    id: str
    type: str
    time: datetime
    source: str
    actor_id: str | None
    actor_org_id: str | None
    subject_org_id: str | None
    subject_user_id: str | None
    acting_session_id: str | None
    policy_revision: str | None
    envelope: str
    prev_hash: str
    hash: str
    # The service whose signature audit checked on receipt (None only in unsigned test chains).
    emitter: str | None = None


# The audit table as verification reads it, without the service's model: the CLI uses this.
RECORDS_VIEW = table(
    "audit_records",
    column("seq", BigInteger),
    column("time", UtcDateTime),
    *(column(name, Text) for name in ChainRecord.__slots__ if name not in ("seq", "time")),
)
CHAIN_COLUMNS = tuple(RECORDS_VIEW.c[name] for name in ChainRecord.__slots__)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Audit's signed statement that its chain had record `seq` with hash `head` at `time`."""

    seq: int
    head: str
    time: str
    document: dict[str, Any]


def make_checkpoint(*, seq: int, head: str, time: datetime, key: EventSigningKey) -> Checkpoint:
    document = sign_document(
        {"seq": seq, "head": head, "time": iso_utc(time), "service": key.service}, key
    )
    return Checkpoint(seq=seq, head=head, time=document["time"], document=document)


def read_checkpoint(document: Any, keys: Mapping[str, EventPublicKey]) -> Checkpoint:
    """A checkpoint from its JSON document; SignatureProblem unless audit's key signed it."""
    if not isinstance(document, dict):
        raise SignatureProblem("a checkpoint is a JSON object")
    signer = verify_signature(document, keys)
    if signer != CHECKPOINT_SIGNER:
        raise SignatureProblem(f"checkpoint signed by {signer}, not by {CHECKPOINT_SIGNER}")
    seq, head, time = document.get("seq"), document.get("head"), document.get("time")
    if not isinstance(seq, int) or not isinstance(head, str) or not isinstance(time, str):
        raise SignatureProblem("checkpoint without seq, head and time")
    return Checkpoint(seq=seq, head=head, time=time, document=document)


def checkpoint_line(checkpoint: Checkpoint) -> str:
    return canonical_json(checkpoint.document)


def latest_checkpoint(
    candidates: Iterable[Checkpoint | None],
) -> Checkpoint | None:
    """The checkpoint furthest along the chain among those found (file, stream)."""
    found = [c for c in candidates if c is not None]
    return max(found, key=lambda c: c.seq) if found else None


def last_checkpoint_in_file(path: Path, keys: Mapping[str, EventPublicKey]) -> Checkpoint | None:
    """The last line of a checkpoint file (JSON lines), checked; None for an empty file."""
    last = None
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                last = line
    if last is None:
        return None
    try:
        document = json.loads(last)
    except ValueError as exc:
        raise SignatureProblem(f"the last line of {path} is not JSON") from exc
    return read_checkpoint(document, keys)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification: the head reached, or the first record that does not hold."""

    ok: bool
    count: int
    head: str
    first_broken: int | None = None
    broken_id: str | None = None
    problem: str | None = None
    anchor: str | None = None
    anchor_seq: int | None = None
    signatures_checked: bool = False
    checkpoint_seq: int | None = None


def record_problem(
    record: ChainRecord, prev_hash: str, keys: Mapping[str, EventPublicKey] | None = None
) -> str | None:
    """Why `record` does not follow a record hashed `prev_hash` (or, with `keys`, does not prove
    who emitted it), or None when it holds."""
    if record.prev_hash != prev_hash:
        return "prev_hash does not match the previous record's hash"
    if chain_hash(prev_hash, record.envelope) != record.hash:
        return "hash does not match the record's content"
    try:
        envelope = json.loads(record.envelope)
    except ValueError:
        return "envelope is not JSON"
    if not isinstance(envelope, dict):
        return "envelope is not a JSON object"
    # The columns are what queries filter on: each must say what the hashed envelope says.
    for attr, name in (("id", "id"), ("type", "type"), ("source", "source")):
        if envelope.get(attr) != getattr(record, name):
            return f"{name} differs from the hashed envelope"
    if "time" in envelope:
        try:
            if parse_time(str(envelope["time"])) != record.time:
                return "time differs from the hashed envelope"
        except ValueError:
            return "time in the hashed envelope is not a timestamp"
    for attr, name in COLUMNS.items():
        if envelope.get(attr) != getattr(record, name):
            return f"{name} differs from the hashed envelope"
    if keys is not None:
        try:
            emitter = emitter_of(envelope, keys)
        except SignatureProblem as exc:
            return f"signature: {exc}"
        if record.emitter != emitter:
            return f"emitter {record.emitter!r} differs from the signer, {emitter}"
    return None


class ChainChecker:
    """Walks records in `seq` order, one at a time, so a long chain never sits in memory.

    With `keys` it checks every record's signature and emitter; with `checkpoint` it checks
    that the record at the checkpoint's seq has the checkpoint's hash and that the chain
    reaches it: a consistent rewrite or a truncation of the newest records is caught then."""

    def __init__(
        self,
        *,
        anchor: str | None = None,
        keys: Mapping[str, EventPublicKey] | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.anchor = anchor
        self.keys = keys
        self.checkpoint = checkpoint
        self.head = GENESIS
        self.count = 0
        self.anchor_seq: int | None = None
        self.checkpoint_reached = False
        self.broken: tuple[ChainRecord, str] | None = None

    def _checkpoint_problem(self, record: ChainRecord) -> str | None:
        checkpoint = self.checkpoint
        if checkpoint is None or self.checkpoint_reached or record.seq < checkpoint.seq:
            return None
        if record.seq > checkpoint.seq:
            return (
                f"no record at seq {checkpoint.seq}, which the signed checkpoint of "
                f"{checkpoint.time} names (the records there were removed or rewritten)"
            )
        if record.hash != checkpoint.head:
            return (
                f"hash differs from the signed checkpoint of {checkpoint.time} "
                "(the records up to here were rewritten)"
            )
        self.checkpoint_reached = True
        return None

    def feed(self, record: ChainRecord) -> bool:
        """Check the next record; False (and stop feeding) once the chain is broken."""
        problem = record_problem(record, self.head, self.keys) or self._checkpoint_problem(record)
        if problem is not None:
            self.broken = (record, problem)
            return False
        self.head, self.count = record.hash, self.count + 1
        if self.anchor is not None and record.hash == self.anchor:
            self.anchor_seq = record.seq
        return True

    def report(self) -> ChainReport:
        common: dict[str, Any] = {
            "count": self.count,
            "head": self.head,
            "anchor": self.anchor,
            "anchor_seq": self.anchor_seq,
            "signatures_checked": self.keys is not None,
            "checkpoint_seq": self.checkpoint.seq if self.checkpoint else None,
        }
        if self.broken is not None:
            record, problem = self.broken
            return ChainReport(
                ok=False, first_broken=record.seq, broken_id=record.id, problem=problem, **common
            )
        if self.anchor is not None and self.anchor_seq is None:
            problem = "the anchor is not in the chain: records up to it were removed or rewritten"
            return ChainReport(ok=False, problem=problem, **common)
        if self.checkpoint is not None and not self.checkpoint_reached:
            problem = (
                f"the chain ends before seq {self.checkpoint.seq}, which the signed checkpoint "
                f"of {self.checkpoint.time} names: the newest records were removed"
            )
            return ChainReport(ok=False, problem=problem, **common)
        return ChainReport(ok=True, **common)


def check_chain(
    records: Iterable[ChainRecord],
    *,
    anchor: str | None = None,
    keys: Mapping[str, EventPublicKey] | None = None,
    checkpoint: Checkpoint | None = None,
) -> ChainReport:
    """Recompute the chain over `records` (in `seq` order); a pure function, no I/O."""
    checker = ChainChecker(anchor=anchor, keys=keys, checkpoint=checkpoint)
    for record in records:
        if not checker.feed(record):
            break
    return checker.report()


async def verify_engine(
    engine: AsyncEngine,
    *,
    anchor: str | None = None,
    keys: Mapping[str, EventPublicKey] | None = None,
    checkpoint: Checkpoint | None = None,
    chunk: int = 2000,
) -> ChainReport:
    """Verify the chain stored behind `engine`, reading `chunk` records per transaction (the
    chain only grows at its end, so short reads see a consistent prefix and never hold up
    the writer)."""
    checker = ChainChecker(anchor=anchor, keys=keys, checkpoint=checkpoint)
    last_seq = 0
    seq = RECORDS_VIEW.c.seq
    while True:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(*CHAIN_COLUMNS).where(seq > last_seq).order_by(seq).limit(chunk)
                )
            ).all()
        if not rows:
            return checker.report()
        for row in rows:
            if not checker.feed(ChainRecord(**row._mapping)):
                return checker.report()
            last_seq = row.seq


def report_json(report: ChainReport) -> dict[str, Any]:
    """What `GET /v1/audit/verify` and `onbehalf audit verify --json` answer."""
    return {
        "ok": report.ok,
        "count": report.count,
        "head": report.head,
        "first_broken": report.first_broken,
        "broken_id": report.broken_id,
        "problem": report.problem,
        "anchor_seq": report.anchor_seq,
        "signatures_checked": report.signatures_checked,
        "checkpoint_seq": report.checkpoint_seq,
    }
