"""What catalog answers over NATS: price quotes for cart and orders (request-reply)."""

from __future__ import annotations

import json

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from libs.common.quotes import QUOTE_SUBJECT, QuoteRequest
from libs.common.runtime import ServiceRuntime
from services.catalog import service

log = structlog.get_logger("catalog.handlers")


async def serve_quotes(runtime: ServiceRuntime) -> Subscription:
    async def on_request(message: Msg) -> None:
        try:
            request = QuoteRequest.model_validate_json(message.data)
            reply = await service.quote(runtime=runtime, org_id=request.org_id, skus=request.skus)
            payload = reply.model_dump_json().encode()
        except ValidationError as exc:
            payload = json.dumps(
                {"error": f"invalid quote request: {exc.error_count()} errors"}
            ).encode()
        except Exception as exc:
            log.exception("quote_failed", error=repr(exc))
            payload = json.dumps({"error": "the catalog could not quote"}).encode()
        await message.respond(payload)

    # A queue group: several catalog instances share the quotes.
    return await runtime.nc.subscribe(QUOTE_SUBJECT, queue="catalog", cb=on_request)
