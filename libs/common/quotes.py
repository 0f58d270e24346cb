"""Asking catalog for prices: NATS request-reply, or in the process when catalog runs in it
(libs/common/local_requests.py; contract: libs.contracts.catalog)."""

from __future__ import annotations

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from libs.common import local_requests
from libs.common.errors import Unavailable
from libs.contracts.base import BadMessage
from libs.contracts.catalog import PriceQuote, PriceQuoteRequest, QuoteRefused

QUOTE_SUBJECT = PriceQuoteRequest.subject


async def request_quote(
    nc: NATS, *, org_id: str, skus: list[str], timeout: float = 2.0
) -> PriceQuote:
    payload = PriceQuoteRequest(org_id=org_id, skus=sorted(set(skus))).encode()
    try:
        reply = await local_requests.request(nc, QUOTE_SUBJECT, payload, timeout=timeout)
    except NoRespondersError as exc:
        raise Unavailable("the catalog is not answering price quotes") from exc
    except NatsTimeoutError as exc:
        raise Unavailable("the catalog did not answer the price quote in time") from exc
    try:
        return PriceQuote.decode(reply)
    except BadMessage:
        pass
    try:
        refused = QuoteRefused.decode(reply).error
    except BadMessage:
        refused = "an answer that is not a quote"
    raise Unavailable(f"the catalog refused the price quote: {refused}")
