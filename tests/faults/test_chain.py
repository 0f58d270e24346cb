"""The hash chain as pure functions: what verification finds, and what it cannot find without an anchor."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from libs.common.events import EventContext, build_event, decode, encode
from services.audit.service import (
    GENESIS,
    ChainRecord,
    canonical_envelope,
    chain_events,
    chain_hash,
    check_chain,
)

CONTEXT = EventContext(
    actor_id="staff-1",
    actor_org_id="seller",
    subject_org_id="customer-a",
    subject_user_id=None,
    acting_session_id="session-1",
    policy_revision="rev-1",
)


def _records(count: int = 5) -> list[ChainRecord]:
    events = [
        build_event(source="/test", type="orders.order.placed", data={"n": n}, context=CONTEXT)
        for n in range(count)
    ]
    rows = chain_events(events, head=GENESIS, seen=set())
    return [ChainRecord(seq=n + 1, **row) for n, row in enumerate(rows)]


def _rehash_from(records: list[ChainRecord], start: int) -> list[ChainRecord]:
    """What someone with write access does to hide a change: recompute every later hash."""
    out = records[:start]
    prev = out[-1].hash if out else GENESIS
    for record in records[start:]:
        digest = chain_hash(prev, record.envelope)
        out.append(dataclasses.replace(record, prev_hash=prev, hash=digest))
        prev = digest
    return out


def _with_data(record: ChainRecord, **data: Any) -> ChainRecord:
    envelope = json.loads(record.envelope)
    envelope["data"].update(data)
    return dataclasses.replace(record, envelope=json.dumps(envelope, sort_keys=True))


def test_an_untouched_chain_verifies_to_its_head() -> None:
    records = _records()
    report = check_chain(records)
    assert (report.ok, report.count, report.head) == (True, 5, records[-1].hash)
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))


def test_redeliveries_and_repeats_are_not_chained_twice() -> None:
    event = build_event(source="/test", type="cart.item.added", data={}, context=CONTEXT)
    again = decode(encode(event))  # as it comes back from JetStream on a redelivery
    seen: set[str] = set()
    rows = chain_events([event, again], head=GENESIS, seen=seen)
    assert len(rows) == 1 and seen == {event.get_id()}
    assert chain_events([again], head=rows[0]["hash"], seen=seen) == []
    # The envelope is canonical: the copy that went through the wire hashes the same.
    assert canonical_envelope(again) == canonical_envelope(event)


Tamper = Callable[[list[ChainRecord]], list[ChainRecord]]
# tamper, seq of the first broken record, records intact before it, the problem named
CASES: dict[str, tuple[Tamper, int, int, str]] = {
    "column differs from envelope": (
        lambda r: [*r[:2], dataclasses.replace(r[2], actor_id="someone-else"), *r[3:]],
        3,
        2,
        "actor_id differs",
    ),
    "time column moved": (
        lambda r: [*r[:2], dataclasses.replace(r[2], time=r[0].time.replace(year=2000)), *r[3:]],
        3,
        2,
        "time differs",
    ),
    "hashed content changed": (
        lambda r: [*r[:2], _with_data(r[2], n=99), *r[3:]],
        3,
        2,
        "hash does not match",
    ),
    "content changed and its own hash recomputed": (
        lambda r: [
            *r[:2],
            dataclasses.replace(
                _with_data(r[2], n=99),
                hash=chain_hash(r[2].prev_hash, _with_data(r[2], n=99).envelope),
            ),
            *r[3:],
        ],
        4,
        3,
        "prev_hash does not match",
    ),
    "a record deleted in the middle": (lambda r: [*r[:2], *r[3:]], 4, 2, "prev_hash"),
    "two records swapped": (lambda r: [r[0], r[2], r[1], *r[3:]], 3, 1, "prev_hash"),
}


@pytest.mark.parametrize("case", CASES)
def test_tampering_names_the_first_broken_record(case: str) -> None:
    tamper, broken_seq, intact, problem = CASES[case]
    records = _records()
    report = check_chain(tamper(records))
    assert not report.ok
    assert report.first_broken == broken_seq
    assert report.broken_id == next(r.id for r in records if r.seq == broken_seq)
    assert report.problem and problem in report.problem
    assert report.count == intact


def test_a_rewritten_or_truncated_chain_needs_an_anchor_to_be_caught() -> None:
    records = _records()
    anchor = records[-1].hash  # the head, noted somewhere the database's writers cannot reach
    assert check_chain(records, anchor=anchor).anchor_seq == 5

    rewritten = _rehash_from([*records[:2], _with_data(records[2], n=99), *records[3:]], 2)
    truncated = records[:3]
    for chain in (rewritten, truncated):
        assert check_chain(chain).ok  # consistent in itself: the chain alone cannot tell
        report = check_chain(chain, anchor=anchor)
        assert not report.ok and report.first_broken is None
        assert report.problem and "anchor is not in the chain" in report.problem
