"""Orders' app factory: orders placed from the cart at catalog prices, and their history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.runtime import start_runtime
from libs.common.web import create_service_app
from services.orders.models import Base, OutboxMessage
from services.orders.routes import router
from services.orders.routes_budgets import router as budgets_router
from services.orders.settings import OrdersSettings


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_runtime(
            settings=settings, metadata=Base.metadata, outbox_model=OutboxMessage
        ) as runtime:
            app.state.runtime = runtime
            yield

    return create_service_app(
        title="onbehalf orders", lifespan=lifespan, routers=[router, budgets_router]
    )
