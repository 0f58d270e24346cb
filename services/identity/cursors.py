"""Opaque page cursors identity issues: a (sort key, id) pair as base64 JSON."""

from __future__ import annotations

import base64
import json

from libs.common.errors import Invalid


def encode_cursor(name: str, org_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, org_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        name, org_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise Invalid("cursor is not one this service issued") from exc
    if not isinstance(name, str) or not isinstance(org_id, str):
        raise Invalid("cursor is not one this service issued")
    return name, org_id
