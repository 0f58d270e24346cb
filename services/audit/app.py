"""Audit's app: the consumer of every event, the signed chain, checkpoints, query, verify."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.runtime import start_runtime
from libs.common.signing import EventPublicKey, load_public_keys
from libs.common.web import create_service_app
from services.audit import checkpoints, handlers
from services.audit.models import Base, OutboxMessage
from services.audit.provenance import AuditParts
from services.audit.routes import router
from services.audit.settings import AuditSettings


def load_event_public_keys(settings: AuditSettings) -> dict[str, EventPublicKey]:
    """Every service's public event key: without them audit could tell no event from a forgery."""
    path = settings.event_public_keys_file
    if path is None:
        raise RuntimeError(
            "audit: no public event keys: set ONBEHALF_EVENT_PUBLIC_KEYS_FILE "
            "(`onbehalf run` and the test stack write <data>/secrets/events/public.json)"
        )
    try:
        return load_public_keys(path)
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"audit: cannot load the public event keys {path}: {exc}") from exc


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_runtime(
            settings=settings, metadata=Base.metadata, outbox_model=OutboxMessage
        ) as runtime:
            keys = load_event_public_keys(settings)
            runtime.parts = AuditParts(event_keys=keys)
            runtime.spawn(
                handlers.record_everything(runtime, settings, keys), name="audit-consumer"
            )
            if settings.checkpoint_interval_seconds > 0:
                runtime.spawn(
                    checkpoints.checkpoint_periodically(runtime, settings, keys), name="checkpoints"
                )
            app.state.runtime = runtime
            yield

    return create_service_app(title="onbehalf audit", lifespan=lifespan, routers=[router])
