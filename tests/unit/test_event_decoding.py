"""`events.decode` gives what the CloudEvents SDK's reader gives, on its own path or the SDK's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from libs.common.events import _decoded_common, decode
from libs.common.signing import iso_utc

_SDK = JSONFormat()


def _payload(**changes: Any) -> bytes:
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:onbehalf:service:cart",
        "type": "com.onbehalf.cart.item.added",
        "time": "2026-12-03T10:51:36.123456Z",
        "datacontenttype": "application/json",
        "actorid": "u-1",
        "data": {"sku": "A-1", "quantity": 2},
    }
    attributes.update(changes)
    return json.dumps({k: v for k, v in attributes.items() if v is not ...}).encode()


def _same_as_the_sdk(payload: bytes) -> CloudEvent | None:
    """Asserts `decode` agrees with the SDK (same attributes, time to the microsecond and
    offset, same data; or both refuse); returns the event, None when both refused."""
    try:
        expected = _SDK.read(CloudEvent, payload)
    except Exception as refused:
        with pytest.raises(type(refused)):
            decode(payload)
        return None
    event = decode(payload)
    given = json.loads(payload)
    # The SDK makes up an id and a time an envelope lacks: fresh ones, on either path.
    made_up = {name for name in ("id", "time") if name not in given}
    attributes, sdk_attributes = event.get_attributes(), expected.get_attributes()
    assert attributes.keys() == sdk_attributes.keys()
    assert {k: v for k, v in attributes.items() if k not in made_up} == {
        k: v for k, v in sdk_attributes.items() if k not in made_up
    }
    assert event.get_data() == expected.get_data()
    moment, sdk_moment = event.get_time(), expected.get_time()
    if sdk_moment is not None and "time" not in made_up:
        assert moment is not None
        assert (moment.utcoffset(), moment.microsecond) == (
            sdk_moment.utcoffset(),
            sdk_moment.microsecond,
        )
    return event


@pytest.mark.parametrize(
    "time",
    [
        "2026-12-03T10:51:36.123456Z",
        "2026-12-03T10:51:36Z",
        "2026-12-03T10:51:36.1Z",
        "2026-12-03T10:51:36.000000Z",
        "2026-12-03T10:51:36+05:30",
        "2026-12-03T10:51:36-00:00",
        "2026-12-03T10:51:36.5-08:00",
        # Not RFC 3339: the SDK's reader decides.
        "2026-12-03T10:51:36.1234567Z",
        "2026-12-03T24:00:00Z",
        "2026-12-03T10:51:36",
        "2026-12-03",
        "20261203T105136Z",
        "2026-12-03 10:51:36Z",
        "2026-12-03T10:51:36,5Z",
        # Refused by both.
        "2026-02-30T10:51:36Z",
        "2026-12-03T10:51:36+24:00",
        "2026-12-03T25:00:00Z",
        "yesterday",
        "",
    ],
)
def test_a_time_reads_as_the_sdk_reads_it(time: str) -> None:
    _same_as_the_sdk(_payload(time=time))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"time": ...},
        {"time": None},
        {"time": 1764759096},
        {"data": ...},
        {"data": None},
        {"data": "text"},
        {"data": ..., "data_base64": "aGVsbG8="},
        {"specversion": "0.3"},
        {"specversion": ...},
        {"id": ...},
        {"Actor-Id": "not a valid extension name"},
    ],
)
def test_other_envelopes_read_as_the_sdk_reads_them(changes: dict[str, Any]) -> None:
    _same_as_the_sdk(_payload(**changes))


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe", b"null"])
def test_what_is_not_an_envelope_is_refused_as_before(payload: bytes) -> None:
    _same_as_the_sdk(payload)


def test_what_our_services_write_takes_the_short_path() -> None:
    # The one path that matters for the cost: every event a service emits (iso_utc's times,
    # with and without microseconds) is read without the SDK's reader.
    for moment in (
        datetime(2026, 12, 3, 10, 51, 36, 123456, UTC),
        datetime(2026, 12, 3, tzinfo=UTC),
    ):
        payload = _payload(time=iso_utc(moment))
        assert _decoded_common(payload) is not None
        event = _same_as_the_sdk(payload)
        assert event is not None and event.get_time() == moment
