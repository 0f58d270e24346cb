"""The one clock every service reads: timezone-aware UTC (the database stores UTC, see db.py)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
