"""Orders' settings."""

from __future__ import annotations

from libs.common.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    port: int = 8004
    cart_url: str = "http://127.0.0.1:8003"
