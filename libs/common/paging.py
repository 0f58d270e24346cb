"""Cursor paging for lists: an opaque `cursor` holding the last item's sort key, `next_cursor`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Query

from libs.common.errors import Invalid

T = TypeVar("T")

# `?cursor=`: what the previous page's `next_cursor` said, unchanged.
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="The `next_cursor` of the previous page; absent for the first page",
    ),
]

_NOT_OURS = "cursor is not one this service issued"


def encode_cursor(*key: str) -> str:
    """The position after an item, by its sort key (e.g. name and id): base64url of a JSON list,
    the form identity's customer list issues too. Opaque to clients; never a database offset."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str, *, parts: int) -> tuple[str, ...]:
    """The sort key a cursor holds; 422 (Invalid) for anything this service did not issue."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise Invalid(_NOT_OURS) from exc
    if (
        not isinstance(key, list)
        or len(key) != parts
        or not all(isinstance(part, str) and 0 < len(part) <= 1000 for part in key)
    ):
        raise Invalid(_NOT_OURS)
    return tuple(key)


# The largest sequence number a database column of 64-bit integers holds.
_LARGEST_SEQUENCE = 2**63 - 1


def decode_sequence_cursor(cursor: str) -> int:
    """A cursor holding a sequence number (the audit log's `seq`): 422 (Invalid) for anything
    but digits, and for a number no row can have (SQLite refuses to bind one over 64 bits)."""
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > _LARGEST_SEQUENCE:
        raise Invalid(_NOT_OURS)
    return int(cursor)


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor of (time, id), for lists ordered by creation time."""
    moment, item_id = decode_cursor(cursor, parts=2)
    try:
        parsed = datetime.fromisoformat(moment)
        if parsed.utcoffset() is None:
            raise Invalid(_NOT_OURS)
        # In UTC, as stored: a time at the edge of the calendar cannot be (OverflowError).
        return parsed.astimezone(UTC), item_id
    except (ValueError, OverflowError) as exc:
        raise Invalid(_NOT_OURS) from exc


def page_of(
    rows: Sequence[T], *, limit: int, key: Callable[[T], tuple[str, ...]]
) -> tuple[list[T], str | None]:
    """The first `limit` of `rows` (fetched with limit + 1) and the cursor after the last of
    them, or None when these were the last."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    return page, encode_cursor(*key(page[-1])) if more else None
