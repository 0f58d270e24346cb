"""Parameter types whose rules are in the schema and that never guess: shared by every service."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

# RFC 3339 date-time (a `T` or a space between date and time, a zone or none = UTC).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"
)


def _date_time_only(value: Any) -> Any:
    """Refuse numbers: pydantic would read `?until=0.5` as half a second after 1970."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z")
    return value


# A point in time given as an RFC 3339 string (`format: date-time` in the schema).
Timestamp = Annotated[datetime, BeforeValidator(_date_time_only)]
