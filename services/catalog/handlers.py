"""What catalog answers over NATS: price quotes for cart (request-reply)."""

from __future__ import annotations

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from libs.common import tracing
from libs.common.runtime import ServiceRuntime
from libs.contracts.base import BadMessage
from libs.contracts.catalog import PriceQuoteRequest, QuoteRefused
from services.catalog import products

log = structlog.get_logger("catalog.handlers")


async def serve_quotes(runtime: ServiceRuntime) -> Subscription:
    async def on_request(message: Msg) -> None:
        with tracing.serving(message):
            try:
                request = PriceQuoteRequest.decode(message.data)
                reply = await products.quote(
                    runtime=runtime, org_id=request.org_id, skus=request.skus
                )
                payload = reply.encode()
            except BadMessage as exc:
                payload = QuoteRefused(error=f"invalid quote request: {exc}").encode()
            except Exception as exc:
                log.exception("quote_failed", error=repr(exc))
                payload = QuoteRefused(error="the catalog could not quote").encode()
            await message.respond(payload)

    # A queue group: several catalog instances share the quotes.
    return await runtime.nc.subscribe(PriceQuoteRequest.subject, queue="catalog", cb=on_request)
