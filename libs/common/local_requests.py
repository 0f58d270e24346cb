"""Request/reply that stays in the process when the responder runs in it (services co-located by
onbehalf/colocated.py), and goes over NATS otherwise: the same subject, bytes and headers."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError

from libs.common import tracing

# A responder turns a request's body and headers into the reply's body; it never raises (a
# refusal is a reply), exactly as it would answer over NATS.
Responder = Callable[[bytes, Mapping[str, str] | None], Awaitable[bytes]]


@dataclass(eq=False)
class LocalResponder:
    """Who answers `subject` for callers in this process."""

    subject: str
    responder: Responder
    # The responder runs in (a copy of) the context it was registered in: its service's log
    # fields, not the caller's, as if it had been asked in a process of its own.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    async def serve(self, payload: bytes, headers: Mapping[str, str] | None) -> bytes:
        with tracing.serving_request(self.subject, headers):
            return await self.responder(payload, headers)

    def cancel(self) -> None:
        registered = _LOCAL.get(self.subject, [])
        if self in registered:
            registered.remove(self)
        if not registered:
            _LOCAL.pop(self.subject, None)


# Subject -> who answers it in this process, the latest registration last (tests may start the
# same service twice in one process; the one started last answers until it stops).
_LOCAL: dict[str, list[LocalResponder]] = {}
# Local requests run as tasks of their own (a caller's time-out or cancellation leaves the
# responder to finish, as over NATS); held here until done so none is collected half-way.
_RUNNING: set[asyncio.Task[bytes]] = set()


def answer_locally(subject: str, responder: Responder) -> LocalResponder:
    """Answer `subject` with `responder` for callers in this process (until `.cancel()`)."""
    local = LocalResponder(subject=subject, responder=responder)
    _LOCAL.setdefault(subject, []).append(local)
    return local


@dataclass(eq=False)
class Answering:
    """A subject this process answers, over NATS and to callers in the process itself."""

    local: LocalResponder
    subscription: Subscription

    async def stop(self) -> None:
        """No more requests, from either side."""
        self.local.cancel()
        await self.subscription.unsubscribe()


async def answer_requests(nc: NATS, subject: str, *, queue: str, responder: Responder) -> Answering:
    """Answer `subject` with `responder`: over NATS (queue group `queue`) for other processes,
    and directly for callers in this one."""

    async def on_request(message: Msg) -> None:
        with tracing.serving(message):
            await message.respond(await responder(message.data, message.headers))

    subscription = await nc.subscribe(subject, queue=queue, cb=on_request)
    return Answering(local=answer_locally(subject, responder), subscription=subscription)


def answered_here(subject: str) -> bool:
    """Whether a responder in this process answers `subject` (then no request leaves it)."""
    return subject in _LOCAL


async def request(
    nc: NATS,
    subject: str,
    payload: bytes,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The reply's body. Answered in this process when a responder runs here, over NATS
    otherwise; either way a reply later than `timeout` raises nats' TimeoutError, and no
    responder at all its NoRespondersError."""
    registered = _LOCAL.get(subject)
    if not registered:
        reply = await tracing.request(nc, subject, payload, timeout=timeout, headers=headers)
        return reply.data
    local = registered[-1]
    with tracing.client_span(subject, headers, system="in-process") as carried:
        task = asyncio.get_running_loop().create_task(
            local.serve(payload, carried), context=local.context.copy()
        )
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError as exc:
            raise NatsTimeoutError() from exc
