"""Cart's HTTP routes: thin; decisions live in service.py, locking.py, saved_lists.py and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response, status

from libs.common.web import CurrentPrincipal, Runtime, problems
from services.cart import locking, saved_lists, service
from services.cart.schemas import (
    CartItemCreate,
    CartItemUpdate,
    CartLockRead,
    CartLockTakeover,
    CartRead,
    SavedListCreate,
    SavedListItemWrite,
    SavedListPage,
    SavedListRead,
    SavedListRename,
)

SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
ListId = Annotated[str, Path(min_length=1, max_length=64)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The cart's ETag as read; a stale one gets 412 and changes nothing",
    ),
]

router = APIRouter(tags=["cart"])
lists_router = APIRouter(tags=["saved lists"])


def _with_etag(cart: CartRead) -> Response:
    """The cart as JSON with its ETag. Serialised once, by its own model: returned as a model,
    FastAPI would validate it again against the route's response model and then serialise it
    (a tenth of a cart read's CPU). The routes still declare `response_model=CartRead`."""
    return Response(
        content=cart.model_dump_json(),
        media_type="application/json",
        headers={"ETag": service.etag(cart.version)},
    )


@router.get("/v1/cart", response_model=CartRead)
async def get_cart(principal: CurrentPrincipal, runtime: Runtime) -> Response:
    return _with_etag(await service.get_cart(runtime=runtime, principal=principal))


@router.post("/v1/cart/items", responses=problems(409, 412, 503), response_model=CartRead)
async def add_item(
    body: CartItemCreate,
    principal: CurrentPrincipal,
    runtime: Runtime,
    if_match: IfMatch = None,
) -> Response:
    cart = await service.add_item(
        runtime=runtime,
        principal=principal,
        sku=body.sku,
        quantity=body.quantity,
        if_match=if_match,
    )
    return _with_etag(cart)


@router.patch("/v1/cart/items/{sku}", responses=problems(409, 412, 503), response_model=CartRead)
async def change_item(
    sku: SkuPath,
    body: CartItemUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
    if_match: IfMatch = None,
) -> Response:
    cart = await service.change_item(
        runtime=runtime,
        principal=principal,
        sku=sku,
        quantity=body.quantity,
        if_match=if_match,
    )
    return _with_etag(cart)


@router.delete("/v1/cart/items/{sku}", responses=problems(409, 412), response_model=CartRead)
async def remove_item(
    sku: SkuPath,
    principal: CurrentPrincipal,
    runtime: Runtime,
    if_match: IfMatch = None,
) -> Response:
    cart = await service.remove_item(
        runtime=runtime, principal=principal, sku=sku, if_match=if_match
    )
    return _with_etag(cart)


@router.post("/v1/cart/lock", responses=problems(409))
async def lock_cart(principal: CurrentPrincipal, runtime: Runtime) -> CartLockRead:
    return await locking.lock_cart(runtime=runtime, principal=principal)


@router.post("/v1/cart/lock/takeover", responses=problems(409))
async def take_over_lock(
    principal: CurrentPrincipal,
    runtime: Runtime,
    body: CartLockTakeover | None = None,
) -> CartLockRead:
    """Without a body (contract v1) whoever holds the lock now is taken over; with
    `holder_session_id` only that holder is (409 naming whoever holds it instead)."""
    return await locking.take_over_lock(
        runtime=runtime,
        principal=principal,
        holder_session_id=body.holder_session_id if body else None,
    )


@router.delete("/v1/cart/lock", status_code=status.HTTP_204_NO_CONTENT, responses=problems(409))
async def unlock_cart(principal: CurrentPrincipal, runtime: Runtime) -> None:
    await locking.unlock_cart(runtime=runtime, principal=principal)


# ---------------------------------------------------------------- saved lists


@lists_router.get("/v1/saved-lists")
async def list_saved_lists(principal: CurrentPrincipal, runtime: Runtime) -> SavedListPage:
    return await saved_lists.list_saved_lists(runtime=runtime, principal=principal)


@lists_router.post("/v1/saved-lists", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_saved_list(
    body: SavedListCreate, principal: CurrentPrincipal, runtime: Runtime
) -> SavedListRead:
    return await saved_lists.create_saved_list(
        runtime=runtime, principal=principal, name=body.name, items=body.items
    )


@lists_router.get("/v1/saved-lists/{list_id}")
async def get_saved_list(
    list_id: ListId, principal: CurrentPrincipal, runtime: Runtime
) -> SavedListRead:
    return await saved_lists.get_saved_list(runtime=runtime, principal=principal, list_id=list_id)


@lists_router.patch("/v1/saved-lists/{list_id}", responses=problems(409))
async def rename_saved_list(
    list_id: ListId, body: SavedListRename, principal: CurrentPrincipal, runtime: Runtime
) -> SavedListRead:
    return await saved_lists.rename_saved_list(
        runtime=runtime, principal=principal, list_id=list_id, name=body.name
    )


@lists_router.delete("/v1/saved-lists/{list_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_saved_list(list_id: ListId, principal: CurrentPrincipal, runtime: Runtime) -> None:
    await saved_lists.delete_saved_list(runtime=runtime, principal=principal, list_id=list_id)


@lists_router.post("/v1/saved-lists/{list_id}/items")
async def add_list_item(
    list_id: ListId,
    body: SavedListItemWrite,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> SavedListRead:
    return await saved_lists.add_list_item(
        runtime=runtime,
        principal=principal,
        list_id=list_id,
        sku=body.sku,
        quantity=body.quantity,
    )


@lists_router.patch("/v1/saved-lists/{list_id}/items/{sku}")
async def change_list_item(
    list_id: ListId,
    sku: SkuPath,
    body: CartItemUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> SavedListRead:
    return await saved_lists.change_list_item(
        runtime=runtime,
        principal=principal,
        list_id=list_id,
        sku=sku,
        quantity=body.quantity,
    )


@lists_router.delete("/v1/saved-lists/{list_id}/items/{sku}")
async def remove_list_item(
    list_id: ListId, sku: SkuPath, principal: CurrentPrincipal, runtime: Runtime
) -> SavedListRead:
    return await saved_lists.remove_list_item(
        runtime=runtime, principal=principal, list_id=list_id, sku=sku
    )


@lists_router.post(
    "/v1/saved-lists/{list_id}/add-to-cart",
    responses=problems(409, 412, 503),
    response_model=CartRead,
)
async def add_list_to_cart(
    list_id: ListId,
    principal: CurrentPrincipal,
    runtime: Runtime,
    if_match: IfMatch = None,
) -> Response:
    cart = await saved_lists.add_list_to_cart(
        runtime=runtime, principal=principal, list_id=list_id, if_match=if_match
    )
    return _with_etag(cart)
