"""Audit's settings."""

from __future__ import annotations

from libs.common.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    port: int = 8005
    consumer_name: str = "audit"
    consume_batch: int = 256
