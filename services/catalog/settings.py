"""Catalog's settings."""

from __future__ import annotations

from libs.common.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    port: int = 8002
