"""Cart's app factory: the active cart and its lock, saved lists, the checkout and unlock consumers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.runtime import start_runtime
from libs.common.web import create_service_app
from services.cart import handlers
from services.cart.models import Base, OutboxMessage
from services.cart.routes import lists_router, router
from services.cart.settings import CartSettings


def create_app(settings: CartSettings | None = None) -> FastAPI:
    settings = settings or CartSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_runtime(
            settings=settings, metadata=Base.metadata, outbox_model=OutboxMessage
        ) as runtime:
            checkouts = await handlers.serve_checkouts(runtime)
            snapshots = await handlers.serve_order_snapshots(runtime)
            runtime.spawn(handlers.check_out_ordered_carts(runtime), name="checkout")
            runtime.spawn(handlers.release_locks_of_ended_sessions(runtime), name="lock-release")
            app.state.runtime = runtime
            try:
                yield
            finally:
                await checkouts.stop()
                await snapshots.stop()

    return create_service_app(
        title="onbehalf cart", lifespan=lifespan, routers=[router, lists_router]
    )
