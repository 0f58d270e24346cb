"""Orders' HTTP routes: thin; decisions live in service.py, history.py and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Response, status

from libs.common.paging import CursorQuery
from libs.common.web import BearerCredentials, CurrentPrincipal, Runtime, problems
from services.orders import history, service
from services.orders.schemas import (
    ORDERS_PAGE_DEFAULT,
    ORDERS_PAGE_MAX,
    OrderCancel,
    OrderCreate,
    OrderPage,
    OrderRead,
    OrderStatus,
)

OrderId = Annotated[str, Path(max_length=64)]

router = APIRouter(tags=["orders"])


@router.post(
    "/v1/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses=problems(409, 503),
)
async def place_order(
    principal: CurrentPrincipal,
    runtime: Runtime,
    credentials: BearerCredentials,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Required: the same key replays the first answer instead of ordering twice",
        ),
    ],
    body: Annotated[OrderCreate | None, Body()] = None,
) -> Response:
    order, replayed = await service.place_order(
        runtime=runtime,
        principal=principal,
        bearer_token=credentials.credentials if credentials else "",
        idempotency_key=idempotency_key,
        body=body or OrderCreate(),
    )
    # Serialised once, by its own model: returned as a model, FastAPI would validate it again
    # against the response model before serialising it.
    return Response(
        content=order.model_dump_json(),
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"} if replayed else None,
    )


@router.get("/v1/orders", response_model=OrderPage)
async def list_orders(
    principal: CurrentPrincipal,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=ORDERS_PAGE_MAX)] = ORDERS_PAGE_DEFAULT,
    cursor: CursorQuery = None,
    status: Annotated[
        OrderStatus | None, Query(description="Only the orders in this status")
    ] = None,
) -> Response:
    """The organisation's orders (or the acting subject's), newest first, a page at a time;
    only those in `status` when it is given."""
    page = await history.list_orders(
        runtime=runtime, principal=principal, limit=limit, cursor=cursor, status=status
    )
    # Serialised once, by its own model (returned as a model, FastAPI would validate the page
    # again against the response model before serialising it).
    return Response(content=page.model_dump_json(), media_type="application/json")


@router.get("/v1/orders/{order_id}")
async def get_order(order_id: OrderId, principal: CurrentPrincipal, runtime: Runtime) -> OrderRead:
    return await service.get_order(runtime=runtime, principal=principal, order_id=order_id)


@router.post("/v1/orders/{order_id}/cancel", responses=problems(409))
async def cancel_order(
    order_id: OrderId,
    principal: CurrentPrincipal,
    runtime: Runtime,
    body: Annotated[OrderCancel | None, Body()] = None,
) -> OrderRead:
    return await service.cancel_order(
        runtime=runtime,
        principal=principal,
        order_id=order_id,
        reason=(body or OrderCancel()).reason,
    )
