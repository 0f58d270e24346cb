"""Cart's settings."""

from __future__ import annotations

from libs.common.settings import ServiceSettings


class CartSettings(ServiceSettings):
    service_name: str = "cart"
    port: int = 8003
    max_quantity: int = 10_000
