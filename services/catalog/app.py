"""Catalog's app factory: products, customer prices, assortments, price quotes over NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.runtime import start_runtime
from libs.common.web import create_service_app
from services.catalog import handlers
from services.catalog.models import Base, OutboxMessage
from services.catalog.routes import router
from services.catalog.settings import CatalogSettings
from services.catalog.views import CatalogParts


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_runtime(
            settings=settings, metadata=Base.metadata, outbox_model=OutboxMessage
        ) as runtime:
            runtime.parts = parts = CatalogParts.fresh(runtime)
            quotes = await handlers.serve_quotes(runtime)
            app.state.runtime = runtime
            try:
                yield
            finally:
                await quotes.stop()
                await parts.close()

    return create_service_app(title="onbehalf catalog", lifespan=lifespan, routers=[router])
