"""The catalog revision: every catalog write raises it in its own transaction; cached answers
hold only while it is unchanged (services/catalog/views.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.runtime import ServiceRuntime, UnitOfWork
from services.catalog.models import CatalogRevision

ROW = 1
_table = cast(Table, CatalogRevision.__table__)
_READ = select(_table.c.revision).where(_table.c.id == ROW)
_RAISE = update(_table).where(_table.c.id == ROW).values(revision=_table.c.revision + 1)
_FIRST = insert(_table).values(id=ROW, revision=1)


async def current(session: AsyncSession) -> int:
    """The revision as this read transaction sees it (0 before the first write)."""
    return (await session.execute(_READ)).scalar() or 0


@asynccontextmanager
async def changing(runtime: ServiceRuntime) -> AsyncIterator[UnitOfWork]:
    """`runtime.unit_of_work()` for catalog writes. Every catalog state change publishes an
    event, so work that staged one raises the revision, in the same transaction: no replica
    can see the change and still take an answer cached before it for current."""
    async with runtime.unit_of_work() as uow:
        yield uow
        if uow.staged:
            raised = await uow.session.execute(_RAISE)
            if not raised.rowcount:  # type: ignore[attr-defined]
                # The migration inserts the row; this only guards a database made otherwise.
                await uow.session.execute(_FIRST)
