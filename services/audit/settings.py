"""Audit's settings."""

from __future__ import annotations

from libs.common.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    port: int = 8005
    consumer_name: str = "audit"
    consume_batch: int = 256
    # How long JetStream waits for an ack before redelivering: after a crash, the batch that
    # was in flight is recorded this much later. A batch commits in milliseconds.
    consume_ack_wait_seconds: float = 10.0
