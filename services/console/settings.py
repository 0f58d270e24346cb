"""The console's settings, from the environment: where the five services listen, cookies, sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """No database, no NATS: the console only calls the services' public HTTP APIs."""

    model_config = SettingsConfigDict(env_prefix="ONBEHALF_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    identity_url: str = "http://127.0.0.1:8001"
    catalog_url: str = "http://127.0.0.1:8002"
    cart_url: str = "http://127.0.0.1:8003"
    orders_url: str = "http://127.0.0.1:8004"
    audit_url: str = "http://127.0.0.1:8005"
    # A browser session ends after this long idle; the tokens it holds end on their own earlier.
    console_session_idle_seconds: int = 8 * 3600
    console_max_sessions: int = 10_000
    # Behind TLS set this true: the session cookie is then sent over HTTPS only.
    console_cookie_secure: bool = False
    console_request_timeout_seconds: float = 10.0
    log_level: str = "info"
    # Every log line JSON (`json`) or every line plain (`console`), as the services.
    log_format: Literal["json", "console"] = "json"
    # Tracing, as the services (libs/common/tracing.py): off unless OTEL_EXPORTER_OTLP_ENDPOINT
    # or this file is set; the console's requests to the services then carry its traceparent.
    trace_file: Path | None = None
