"""Catalog's HTTP routes: thin; decisions live in service.py and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from libs.common.web import CurrentPrincipal, Runtime
from services.catalog import service
from services.catalog.schemas import (
    AssortmentRead,
    AssortmentUpdate,
    CustomerPriceRead,
    CustomerPriceUpdate,
    ProductCreate,
    ProductPage,
    ProductRead,
)

router = APIRouter(tags=["catalog"])


@router.get("/v1/products")
async def list_products(
    principal: CurrentPrincipal,
    runtime: Runtime,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> ProductPage:
    return await service.list_products(runtime=runtime, principal=principal, q=q)


@router.post("/v1/products", status_code=status.HTTP_201_CREATED)
async def create_product(
    body: ProductCreate, principal: CurrentPrincipal, runtime: Runtime
) -> ProductRead:
    return await service.create_product(runtime=runtime, principal=principal, body=body)


@router.put("/v1/customers/{org_id}/prices/{sku}")
async def set_customer_price(
    org_id: Annotated[str, Path(max_length=64)],
    sku: Annotated[str, Path(max_length=64)],
    body: CustomerPriceUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> CustomerPriceRead:
    return await service.set_customer_price(
        runtime=runtime, principal=principal, org_id=org_id, sku=sku, price=body.price
    )


@router.put("/v1/customers/{org_id}/assortment")
async def set_assortment(
    org_id: Annotated[str, Path(max_length=64)],
    body: AssortmentUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> AssortmentRead:
    return await service.set_assortment(
        runtime=runtime, principal=principal, org_id=org_id, skus=body.skus
    )
