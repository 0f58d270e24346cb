"""Catalog's cache parts in process: the shared revision read never hands a request a value
read before it arrived, and a priced view holds only at its revision and before its moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.catalog.revision import SharedReads
from services.catalog.views import PricedViews

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


class Database:
    """A revision that a test reads step by step: each read waits until it is let through."""

    def __init__(self) -> None:
        self.revision = 0
        self.reads = 0
        self.started = asyncio.Event()
        self.through = asyncio.Event()
        self.fail = False

    async def read(self) -> int:
        # The worst case of a real read: its snapshot is taken as it starts.
        snapshot = self.revision
        self.reads += 1
        self.started.set()
        await self.through.wait()
        self.through.clear()
        if self.fail:
            raise RuntimeError("the database went away")
        return snapshot

    def let_through(self) -> None:
        """The read under way ends; `started` is set again when the next one begins."""
        self.started.clear()
        self.through.set()


async def test_requests_waiting_together_share_one_read_but_never_one_under_way() -> None:
    database = Database()
    shared = SharedReads(database.read)
    # The first request reads at once; the two after it wait for the next read.
    early = [asyncio.create_task(shared.current()) for _ in range(3)]
    await database.started.wait()
    database.revision = 1  # a write commits while the first read runs...
    late = asyncio.create_task(shared.current())  # ... and this request arrives after it
    database.let_through()
    await database.started.wait()  # a second read: the first one began before `late` came
    assert early[0].done() and not late.done()
    database.let_through()
    assert await asyncio.gather(*early, late) == [0, 1, 1, 1]
    assert database.reads == 2


async def test_a_failed_read_fails_its_waiters_and_the_next_one_reads_again() -> None:
    database = Database()
    shared = SharedReads(database.read)
    database.fail = True
    waiting = asyncio.create_task(shared.current())
    await database.started.wait()
    database.let_through()
    with pytest.raises(RuntimeError):
        await waiting
    database.fail = False
    database.revision = 7
    again = asyncio.create_task(shared.current())
    await database.started.wait()
    database.let_through()
    assert await again == 7


def test_a_view_holds_at_its_revision_until_its_moment() -> None:
    views: PricedViews[str] = PricedViews(capacity=2)
    moment = NOW + timedelta(minutes=5)
    views.put("a", "page a", revision=3, until=moment)
    hit = views.get("a", revision=3, now=NOW)
    assert hit is not None and hit.value == "page a"
    assert views.get("a", revision=3, now=moment) is None  # a promotion starts or ends
    views.put("a", "page a", revision=3, until=None)
    assert views.get("a", revision=4, now=NOW) is None  # the catalog changed: all gone
    assert len(views) == 0
    views.put("b", "old", revision=3, until=None)  # built by a reader that began earlier
    assert views.get("b", revision=4, now=NOW) is None
    for key in ("x", "y", "z"):
        views.put(key, key, revision=4, until=None)
    assert len(views) == 2 and views.get("x", revision=4, now=NOW) is None  # bounded, LRU
