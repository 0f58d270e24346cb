"""Prometheus metrics beyond HTTP: acting sessions, outbox backlog, audit lag (docs/operations.md)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.contracts.base import Event
from libs.contracts.identity import ActingSessionDenied, ActingSessionEnded, ActingSessionStarted

ACTING_STARTED = Counter(
    "onbehalf_acting_sessions_started_total", "Acting sessions started, by mode", ["mode"]
)
ACTING_DENIED = Counter(
    "onbehalf_acting_sessions_denied_total",
    "Acting sessions the policy refused, by its reason",
    ["reason"],
)
ACTING_ENDED = Counter(
    "onbehalf_acting_sessions_ended_total",
    "Acting sessions ended, by reason (stopped, switched, expired, idle_timeout, revoked) and, "
    "for a revocation, its cause (the policy's reason)",
    ["reason", "cause"],
)
OUTBOX_BACKLOG = Gauge(
    "onbehalf_outbox_backlog",
    "Events written to the service's outbox and not yet marked published (acknowledged by "
    "JetStream; on SQLite marked together up to 0.2 s later; measured when /metrics is scraped)",
    ["service"],
)
GC_FROZEN = Gauge(
    "onbehalf_gc_frozen_objects",
    "Objects built at start-up and frozen out of the garbage collector's scans (gc.freeze)",
)
GC_FROZEN.set_function(gc.get_freeze_count)
AUDIT_LAG = Histogram(
    "onbehalf_audit_lag_seconds",
    "From an event's time to the commit that appended it to the audit chain",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# Reasons come from the policy and from identity's code: a bounded set, but bound the text too.
_MAX_LABEL = 64


def _label(value: str | None) -> str:
    return (value or "none")[:_MAX_LABEL]


def _started(event: Any) -> None:
    ACTING_STARTED.labels(_label(event.mode)).inc()


def _denied(event: Any) -> None:
    ACTING_DENIED.labels(_label(event.reason)).inc()


def _ended(event: Any) -> None:
    cause = _label(event.detail) if event.reason == "revoked" else ""
    ACTING_ENDED.labels(_label(event.reason), cause).inc()


# What a committed event counts for, by its contract.
_COUNTED: dict[type[Event], Callable[[Any], None]] = {
    ActingSessionStarted: _started,
    ActingSessionDenied: _denied,
    ActingSessionEnded: _ended,
}


def count_committed(events: Iterable[Event]) -> None:
    """Called once a unit of work committed its events: a rolled-back change counts nothing."""
    for event in events:
        count = _COUNTED.get(type(event))
        if count is not None:
            count(event)


async def measure_outbox_backlog(
    *, service: str, engine: AsyncEngine, outbox_model: type[Any], timeout: float = 2.0
) -> None:
    """Count the pending outbox rows now (an indexed column); left as it was if the database
    does not answer in time, so a scrape never hangs on it."""
    statement = select(func.count()).where(outbox_model.published_at.is_(None))

    async def count() -> int:
        async with engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    try:
        OUTBOX_BACKLOG.labels(service).set(await asyncio.wait_for(count(), timeout=timeout))
    except Exception:  # the database away: readiness reports it; the gauge keeps its last value
        return
