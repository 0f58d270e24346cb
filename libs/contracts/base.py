"""What every contract is: an event (published on `events.<type>`) or a request and its reply."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# An id our services issue (a UUID, 36 characters); events carry ids only, never free text keys.
Id = Annotated[str, Field(min_length=1, max_length=36)]
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, Field(pattern=UUID_PATTERN)]

# Every CloudEvents `type` we emit is reverse-DNS: this prefix, then `<service>.<entity>.<verb>`
# (the event's name). Events stored before it (v1 envelopes) carry the bare name: the functions
# below accept both forms, so filters and dispatch work on old and new events alike.
TYPE_PREFIX = "com.onbehalf."


def event_name(event_type: str) -> str:
    """`com.onbehalf.cart.item.added` (or the v1 `cart.item.added`) -> `cart.item.added`: the
    name the NATS subject is made of (`events.<name>`), owner first."""
    return event_type.removeprefix(TYPE_PREFIX)


def cloudevents_type(event_type: str) -> str:
    """`cart.item.added` (v1) or `com.onbehalf.cart.item.added` -> the reverse-DNS form."""
    return TYPE_PREFIX + event_name(event_type)


class Event(BaseModel):
    """The data of one kind of event. A subclass names its CloudEvents `type` once, in
    `event_type` (`com.onbehalf.<service>.<entity>.<verb>`); the subject, the outbox row, the
    consumer's filter and the event catalogue (docs/asyncapi.json) all derive from it, so a
    producer and its consumers cannot spell it two ways, and a renamed field fails mypy.

    Consumers ignore fields they do not know (a producer may add one without breaking them)."""

    model_config = ConfigDict(frozen=True)

    event_type: ClassVar[str]

    @classmethod
    def subject(cls) -> str:
        """`com.onbehalf.cart.item.added` is published on `events.cart.item.added`."""
        return f"events.{event_name(cls.event_type)}"

    @classmethod
    def is_type_of(cls, event_type: str) -> bool:
        """Whether a received event's `type` (either form) is this contract's."""
        return cloudevents_type(event_type) == cls.event_type

    def data(self) -> dict[str, Any]:
        """The CloudEvents `data`: JSON types only (decimals as strings, times in ISO 8601)."""
        return self.model_dump(mode="json", by_alias=True)


class Message(BaseModel):
    """A request or a reply over NATS request-reply (core NATS, no stream)."""

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """The message, or BadMessage saying what is wrong with it."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise BadMessage(f"not a {cls.__name__}: {where}: {first['msg']}") from None


class Request(Message):
    """A request; `subject` is where it is sent and the only place that names it."""

    subject: ClassVar[str]


class BadMessage(ValueError):
    """A request or reply that is not what its contract says; the message says why."""


class Refusal(Message):
    """Why a request was refused, as the HTTP error the asking service should answer with:
    `status` is the HTTP status, `detail`/`reason` the error body, `extra` its other fields."""

    status: int = Field(ge=400, le=599)
    detail: str
    reason: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


def to_json(model: BaseModel) -> str:
    """For logs and tests: the model as the bus carries it."""
    return json.dumps(model.model_dump(mode="json"), sort_keys=True)
