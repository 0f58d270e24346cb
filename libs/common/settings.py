"""Settings every service shares, read from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_policy_dir() -> Path:
    # An editable install finds policies/ beside libs/; an installed image runs from /app.
    beside_code = PROJECT_ROOT / "policies"
    return beside_code if beside_code.is_dir() else Path.cwd() / "policies"


class ServiceSettings(BaseSettings):
    """What every service needs; each service subclasses it for its own port and extras."""

    model_config = SettingsConfigDict(env_prefix="ONBEHALF_", extra="ignore")

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ONBEHALF_DATABASE_URL")
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "ONBEHALF_NATS_URL"),
    )
    identity_url: str = "http://127.0.0.1:8001"
    # Copies of every stream and KV bucket JetStream keeps when they are provisioned: 1 on one
    # NATS server, 3 on a three-node cluster (then a node can die without losing a message).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Retention of the EVENTS stream, applied when the streams are provisioned (docs/operations.md,
    # "Retention of the EVENTS stream"): JetStream drops an event once it is this old, and the
    # oldest events once the stream holds this many bytes, consumed or not, so audit must have
    # consumed every event by then. 0: no limit. The age is at least the de-duplication window.
    events_max_age_seconds: float = Field(default=7 * 24 * 3600.0, ge=0)
    events_max_bytes: int = Field(default=10 * 1024**3, ge=0)
    policy_dir: Path = Field(default_factory=default_policy_dir)
    log_level: str = "info"
    # Every log line JSON (`json`) or every line plain (`console`); see libs/common/logging.py.
    log_format: Literal["json", "console"] = "json"
    # How long a service waits at start-up for NATS and identity's key set before giving up.
    startup_timeout_seconds: float = 30.0
    relay_poll_seconds: float = 0.5
    relay_batch_size: int = 200
    # Published outbox rows are deleted once this old (libs/common/outbox_retention.py); the
    # EVENTS stream and audit hold the events. 0: keep every row.
    outbox_retention_hours: float = Field(default=7 * 24.0, ge=0)
    outbox_prune_every_seconds: float = Field(default=600.0, gt=0)
    # Deliveries of an event whose handling keeps failing before a consumer copies it to the
    # dead-letter stream and moves on (malformed events go there at once).
    consumer_max_deliveries: int = Field(default=5, ge=1)
    # An acting session ends after this long whatever happens (its token expires then too);
    # revocation entries only matter until then.
    acting_session_max_seconds: int = 8 * 3600
    # How often a service reports that an acting session is in use (identity times out idle ones).
    acting_activity_report_seconds: float = 15.0
    # Secrets made by `onbehalf nats init` (or mounted from a Secret): this service's NATS nkey
    # seed, its private event-signing key, and (read by audit) every service's public event key.
    nats_seed_file: Path | None = None
    event_signing_key_file: Path | None = None
    event_public_keys_file: Path | None = None
    token_issuer: str = "onbehalf-identity"
    token_audience: str = "onbehalf"
    # A token naming an unknown key makes a service fetch identity's key set again, at most
    # once per this many seconds (garbage key ids cannot make it hammer identity).
    jwks_refetch_min_seconds: float = 30.0
    # Tracing (docs/operations.md, "Tracing"): off unless OTEL_EXPORTER_OTLP_ENDPOINT names an
    # OTLP/HTTP collector or this names a file every finished span is appended to as JSON.
    trace_file: Path | None = None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.db')}"
