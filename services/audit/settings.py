"""Audit's settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from libs.common.runtime import ServiceRuntime
from libs.common.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    port: int = 8005
    consumer_name: str = "audit"
    consume_batch: int = 256
    # How long JetStream waits for an ack before redelivering: after a crash, the batch that
    # was in flight is recorded this much later. A batch commits in milliseconds.
    consume_ack_wait_seconds: float = 10.0
    # Once an event arrives with less than a batch waiting behind it, how long audit waits
    # for more to append in the same transaction: a batch costs far more than an event in
    # it, so at a trickle this divides audit's CPU per event; the lag grows by this much.
    consume_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # Audit signs its chain head this often (when it moved) and publishes it to the
    # AUDIT_CHECKPOINTS stream and `checkpoint_file`; 0 turns periodic checkpoints off.
    checkpoint_interval_seconds: float = Field(default=60.0, ge=0)
    # Default: <data_dir>/audit-checkpoints.jsonl. Ship it somewhere audit's writers cannot write.
    checkpoint_file: Path | None = None


def audit_settings(runtime: ServiceRuntime) -> AuditSettings:
    """Audit's own settings, as the runtime was started with them (app.py): business functions
    reach them through the runtime, like everything else they need."""
    return runtime.settings_as(AuditSettings)
