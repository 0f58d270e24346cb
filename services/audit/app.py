"""Audit's app factory: the durable consumer of every event, the hash chain, query and verify."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.runtime import start_runtime
from libs.common.web import create_service_app
from services.audit import handlers
from services.audit.models import Base, OutboxMessage
from services.audit.routes import router
from services.audit.settings import AuditSettings


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_runtime(
            settings=settings, metadata=Base.metadata, outbox_model=OutboxMessage
        ) as runtime:
            runtime.spawn(handlers.record_everything(runtime, settings), name="audit-consumer")
            app.state.runtime = runtime
            yield

    return create_service_app(title="onbehalf audit", lifespan=lifespan, routers=[router])
