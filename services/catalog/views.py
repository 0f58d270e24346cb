"""Priced views cached in the catalog process: each answer holds while the catalog revision it
was built at is current and until the next promotion start or end that could change it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from libs.common.runtime import ServiceRuntime
from libs.contracts.catalog import QuotedLine
from services.catalog.pricing import Offer
from services.catalog.revision import HeldConnection, SharedReads

V = TypeVar("V")

# Entries per cache: a page of products is a few kilobytes of JSON, a quoted line far less.
CAPACITY = 4096


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    value: V
    revision: int
    # The first moment it no longer holds (a promotion starts or ends); None: no such moment.
    until: datetime | None


class PricedViews(Generic[V]):
    """A bounded LRU of answers built at one catalog revision. A newer revision empties it;
    an answer from an older one (a reader that began before a write) is never stored."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.revision = -1
        self._entries: OrderedDict[Hashable, Cached[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _observe(self, revision: int) -> bool:
        """Whether `revision` is the newest this cache knows; a newer one empties it."""
        if revision > self.revision:
            self._entries.clear()
            self.revision = revision
        return revision == self.revision

    def get(self, key: Hashable, *, revision: int, now: datetime) -> Cached[V] | None:
        if not self._observe(revision):
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.until is not None and now >= entry.until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, value: V, *, revision: int, until: datetime | None) -> None:
        if not self._observe(revision):
            return
        self._entries[key] = Cached(value=value, revision=revision, until=until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


@dataclass
class CatalogParts:
    """What catalog keeps beside the chassis: its caches (app.py makes them at start-up)."""

    # The product list's JSON bodies by (org, search, page start, page size).
    pages: PricedViews[bytes]
    # One quoted product by (org, SKU); None: not available to that organisation.
    lines: PricedViews[QuotedLine | None]
    # The promotions of an organisation that run now or later; time does not stale them.
    offers: PricedViews[tuple[Offer, ...]]

    # The catalog revision, one read for the requests that ask at once, on its own connection.
    revision: SharedReads
    revision_source: HeldConnection

    @classmethod
    def fresh(cls, runtime: ServiceRuntime) -> CatalogParts:
        source = HeldConnection(runtime.read_engine)
        return cls(
            pages=PricedViews(),
            lines=PricedViews(),
            offers=PricedViews(),
            revision=SharedReads(source.read),
            revision_source=source,
        )

    async def close(self) -> None:
        await self.revision_source.close()


def catalog_parts(runtime: ServiceRuntime) -> CatalogParts:
    return runtime.parts_as(CatalogParts)
