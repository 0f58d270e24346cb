"""Orders' two requests of cart (contracts: libs.contracts.cart), both on the authority of the
caller's bearer token: the order snapshot before placing an order (CartSnapshotRequest), the
checkout after (CartCheckout). Over NATS, or directly when cart runs in the same process
(libs/common/local_requests.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from libs.common import local_requests
from libs.common.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
    Unavailable,
)
from libs.contracts.base import BadMessage, Refusal
from libs.contracts.cart import (
    AUTHORIZATION_HEADER,
    CartCheckout,
    CartSnapshot,
    CartSnapshotReply,
    CartSnapshotRequest,
    CheckoutOrder,
    CheckoutReply,
)

CHECKOUT_SUBJECT = CartCheckout.subject
BadCheckout = BadMessage


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What cart gets: the order, and the bearer token the order was placed with. The body
    names no actor: cart takes actor and subject from the token it verifies itself, so a
    process that can publish on the subject cannot speak for anyone."""

    order: CheckoutOrder
    bearer_token: str | None


def bearer_of(headers: Mapping[str, str] | None) -> str | None:
    """The bearer token of a request's `Authorization` header, if it carries one."""
    scheme, _, token = (headers or {}).get(AUTHORIZATION_HEADER, "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def bearer_header(token: str) -> dict[str, str]:
    return {AUTHORIZATION_HEADER: f"Bearer {token}"}


async def request_checkout(
    nc: NATS, *, order: CheckoutOrder, bearer_token: str, timeout: float = 2.0
) -> bool:
    """Ask cart to check out the cart `order` came from, now, on the authority of the caller's
    token. False if cart did not confirm: the `orders.order.placed` event does the same job
    a little later (cart handles each order once)."""
    payload = CartCheckout(order=order).encode()
    try:
        reply = await local_requests.request(
            nc, CHECKOUT_SUBJECT, payload, timeout=timeout, headers=bearer_header(bearer_token)
        )
        return CheckoutReply.decode(reply).ok
    except Exception:
        return False


def parse_checkout(payload: bytes, headers: Mapping[str, str] | None) -> CheckoutRequest:
    """The order and the caller's token; BadCheckout if the body is not a checkout."""
    return CheckoutRequest(
        order=CartCheckout.decode(payload).order, bearer_token=bearer_of(headers)
    )


# A refusal from cart becomes the same error in orders, so the caller sees cart's answer.
_REFUSALS: dict[int, type[DomainError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: Invalid,
}


def _raise(refusal: Refusal) -> NoReturn:
    error = _REFUSALS.get(refusal.status, Unavailable)
    raise error(refusal.detail, reason=refusal.reason, **refusal.extra)


async def request_order_snapshot(
    nc: NATS, *, bearer_token: str, timeout: float = 2.0
) -> CartSnapshot:
    """The cart the token's holder may order now, priced by catalog; cart's refusal (policy,
    lock, empty cart, products gone) is raised as the same DomainError."""
    try:
        reply = await local_requests.request(
            nc,
            CartSnapshotRequest.subject,
            CartSnapshotRequest().encode(),
            timeout=timeout,
            headers=bearer_header(bearer_token),
        )
    except NoRespondersError as exc:
        raise Unavailable("the cart service is not answering") from exc
    except NatsTimeoutError as exc:
        raise Unavailable("the cart service did not answer in time") from exc
    try:
        answer = CartSnapshotReply.decode(reply)
    except BadMessage as exc:
        raise Unavailable("the cart service answered with something that is not a cart") from exc
    if answer.snapshot is not None:
        return answer.snapshot
    _raise(answer.refusal or Refusal(status=503, detail="the cart service gave no answer"))
