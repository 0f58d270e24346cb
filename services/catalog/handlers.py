"""What catalog answers over NATS: price quotes for cart (request-reply; in the process itself
when cart runs in it, libs/common/local_requests.py)."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from libs.common.local_requests import Answering, answer_requests
from libs.common.runtime import ServiceRuntime
from libs.contracts.base import BadMessage
from libs.contracts.catalog import PriceQuoteRequest, QuoteRefused
from services.catalog import products

log = structlog.get_logger("catalog.handlers")


async def serve_quotes(runtime: ServiceRuntime) -> Answering:
    async def answer(data: bytes, _headers: Mapping[str, str] | None) -> bytes:
        try:
            request = PriceQuoteRequest.decode(data)
            reply = await products.quote(runtime=runtime, org_id=request.org_id, skus=request.skus)
            return reply.encode()
        except BadMessage as exc:
            return QuoteRefused(error=f"invalid quote request: {exc}").encode()
        except Exception as exc:
            log.exception("quote_failed", error=repr(exc))
            return QuoteRefused(error="the catalog could not quote").encode()

    # A queue group: several catalog instances share the quotes.
    return await answer_requests(
        runtime.nc, PriceQuoteRequest.subject, queue="catalog", responder=answer
    )
