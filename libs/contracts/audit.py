"""What audit publishes about itself (into its own chain, like any other service's events)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from libs.contracts.base import Event, Id


class FindingRecorded(Event):
    """An event was refused because it did not prove who emitted it; what it claimed is
    attacker-controlled text, already truncated by audit."""

    event_type: ClassVar[str] = "com.onbehalf.audit.finding.recorded"
    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    finding_id: Id
    reason: str
    event_id: str | None
    # Named `event_type` in the data; the class attribute of that name is this event's own.
    claimed_type: str | None = Field(default=None, alias="event_type")
    source: str | None
    nats_subject: str | None
    signature_kid: str | None
    payload_sha256: str


class CheckpointRequested(Event):
    event_type: ClassVar[str] = "com.onbehalf.audit.checkpoint.requested"

    seq: int
    head: str
