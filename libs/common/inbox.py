"""Idempotent consumption: remember which events a service has already handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime


class InboxMixin:
    """Columns of a service's `inbox` table: one row per event id it has handled."""

    __tablename__: ClassVar[str] = "inbox"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


async def first_delivery(session: AsyncSession, model: type[Any], event_id: str) -> bool:
    """True the first time `event_id` is seen; records it in the caller's transaction."""
    if await session.get(model, event_id) is not None:
        return False
    session.add(model(event_id=event_id, handled_at=utcnow()))
    await session.flush()
    return True
