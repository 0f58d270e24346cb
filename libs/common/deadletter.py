"""Dead letters: messages a consumer gave up on, kept in the DEADLETTER stream with the reason."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import Counter

from libs.common.bus import DEADLETTER_STREAM, deadletter_subject

# Headers of a dead letter; its body is the original payload, byte for byte.
ORIGINAL_SUBJECT = "Onbehalf-Original-Subject"
ORIGINAL_STREAM = "Onbehalf-Original-Stream"
ORIGINAL_SEQUENCE = "Onbehalf-Original-Sequence"
DURABLE = "Onbehalf-Durable"
DELIVERIES = "Onbehalf-Deliveries"
REASON = "Onbehalf-Reason"
ERROR = "Onbehalf-Error"
FAILED_AT = "Onbehalf-Failed-At"

# Why a message was given up on (the metric's `reason` label and the REASON header).
UNDECODABLE = "undecodable"  # not a CloudEvent, or one with invalid attributes
POISON = "poison"  # a handler said it can never handle it
EXHAUSTED = "attempts_exhausted"  # failed on every one of its deliveries

# Headers are one line each; an exception's text can be long and hold anything.
ERROR_MAX_CHARS = 1000

DEAD_LETTERS = Counter(
    "onbehalf_consumer_dead_letters_total",
    "Messages a consumer gave up on and copied to the dead-letter stream",
    ["durable", "reason"],
)


def header_text(text: str, *, limit: int = ERROR_MAX_CHARS) -> str:
    """`text` as one printable ASCII line of at most `limit` characters (a header value)."""
    flat = " ".join(text.split())
    safe = flat.encode("ascii", "backslashreplace").decode("ascii")
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def dead_letter_id(message: Msg, *, durable: str) -> str:
    """The dead letter's Nats-Msg-Id: copying the same message twice (a crash between copy and
    term) stores it once; two consumers giving up on the same message store it twice."""
    metadata = message.metadata
    return f"{durable}.{metadata.stream}.{metadata.sequence.stream}"


async def dead_letter(
    js: JetStreamContext,
    message: Msg,
    *,
    service: str,
    durable: str,
    reason: str,
    error: str,
) -> None:
    """Store a copy of `message` with why it was given up on; raises if it could not be stored
    (the caller then keeps the message rather than lose it)."""
    metadata = message.metadata
    headers = {
        "Nats-Msg-Id": dead_letter_id(message, durable=durable),
        ORIGINAL_SUBJECT: header_text(message.subject, limit=256),
        ORIGINAL_STREAM: metadata.stream,
        ORIGINAL_SEQUENCE: str(metadata.sequence.stream),
        DURABLE: durable,
        DELIVERIES: str(metadata.num_delivered),
        REASON: reason,
        ERROR: header_text(error),
        FAILED_AT: datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    await js.publish(
        deadletter_subject(service, durable),
        message.data,
        headers=headers,
        stream=DEADLETTER_STREAM,
    )
    DEAD_LETTERS.labels(durable, reason).inc()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One stored dead letter, as an operator reads it."""

    sequence: int
    subject: str
    original_subject: str | None
    original_sequence: int | None
    durable: str | None
    deliveries: int | None
    reason: str | None
    error: str | None
    failed_at: str | None
    payload: bytes


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def read_dead_letters(
    js: JetStreamContext, *, subject: str = "deadletter.>", after: int = 0, limit: int = 100
) -> list[DeadLetter]:
    """Up to `limit` dead letters on `subject` with a sequence above `after`, oldest first.

    Direct reads by sequence: no consumer is created, so reading needs no more than read rights
    on the stream, and leaves nothing behind."""
    letters: list[DeadLetter] = []
    sequence = after + 1
    while len(letters) < limit:
        try:
            raw = await js.get_msg(DEADLETTER_STREAM, seq=sequence, subject=subject, next=True)
        except NotFoundError:
            break
        headers = raw.headers or {}
        letters.append(
            DeadLetter(
                sequence=raw.seq or sequence,
                subject=raw.subject or "",
                original_subject=headers.get(ORIGINAL_SUBJECT),
                original_sequence=_int(headers.get(ORIGINAL_SEQUENCE)),
                durable=headers.get(DURABLE),
                deliveries=_int(headers.get(DELIVERIES)),
                reason=headers.get(REASON),
                error=headers.get(ERROR),
                failed_at=headers.get(FAILED_AT),
                payload=raw.data or b"",
            )
        )
        sequence = (raw.seq or sequence) + 1
    return letters


async def count_dead_letters(js: JetStreamContext) -> int:
    """How many dead letters the stream holds (0 if it does not exist yet)."""
    with contextlib.suppress(NotFoundError):
        info = await js.stream_info(DEADLETTER_STREAM)
        return info.state.messages
    return 0
