"""Cart's HTTP routes: thin; decisions live in service.py and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from libs.common.web import CurrentPrincipal, Runtime
from services.cart import service
from services.cart.schemas import CartItemCreate, CartItemUpdate, CartRead
from services.cart.settings import CartSettings


def get_settings(request: Request) -> CartSettings:
    settings: CartSettings = request.app.state.settings
    return settings


Settings = Annotated[CartSettings, Depends(get_settings)]
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]

router = APIRouter(tags=["cart"])


@router.get("/v1/cart")
async def get_cart(principal: CurrentPrincipal, runtime: Runtime) -> CartRead:
    return await service.get_cart(runtime=runtime, principal=principal)


@router.post("/v1/cart/items")
async def add_item(
    body: CartItemCreate, principal: CurrentPrincipal, runtime: Runtime, settings: Settings
) -> CartRead:
    return await service.add_item(
        runtime=runtime,
        settings=settings,
        principal=principal,
        sku=body.sku,
        quantity=body.quantity,
    )


@router.patch("/v1/cart/items/{sku}")
async def change_item(
    sku: SkuPath,
    body: CartItemUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
    settings: Settings,
) -> CartRead:
    return await service.change_item(
        runtime=runtime, settings=settings, principal=principal, sku=sku, quantity=body.quantity
    )


@router.delete("/v1/cart/items/{sku}")
async def remove_item(sku: SkuPath, principal: CurrentPrincipal, runtime: Runtime) -> CartRead:
    return await service.remove_item(runtime=runtime, principal=principal, sku=sku)
