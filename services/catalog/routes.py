"""Catalog's HTTP routes: thin; decisions live in products.py, administration.py,
promotions.py and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from libs.common.paging import CursorQuery
from libs.common.web import CurrentPrincipal, Runtime, problems
from services.catalog import administration, products, promotions
from services.catalog.schemas import (
    PRODUCTS_PAGE_DEFAULT,
    PRODUCTS_PAGE_MAX,
    PROMOTIONS_PAGE_DEFAULT,
    PROMOTIONS_PAGE_MAX,
    SKU_PATTERN,
    AssortmentRead,
    AssortmentUpdate,
    CustomerGroupsRead,
    CustomerGroupsUpdate,
    CustomerPriceRead,
    CustomerPriceUpdate,
    ProductCreate,
    ProductNumberRead,
    ProductNumberUpdate,
    ProductPage,
    ProductRead,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionStatus,
)

router = APIRouter(tags=["catalog"])

OrgIdPath = Annotated[str, Path(max_length=36)]
SkuPath = Annotated[str, Path(max_length=64, pattern=SKU_PATTERN)]
PromotionIdPath = Annotated[str, Path(max_length=36)]


# The body comes as the ProductPage's JSON, cached in products.py: no model to validate here.
@router.get("/v1/products", response_model=ProductPage)
async def list_products(
    principal: CurrentPrincipal,
    runtime: Runtime,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=PRODUCTS_PAGE_MAX)] = PRODUCTS_PAGE_DEFAULT,
    cursor: CursorQuery = None,
) -> Response:
    """The products the caller's organisation (or the acting subject) sees, at its prices, by
    SKU, a page at a time; `q` matches SKU, name or the customer's own product number."""
    body = await products.list_products(
        runtime=runtime, principal=principal, q=q, limit=limit, cursor=cursor
    )
    return Response(content=body, media_type="application/json")


@router.put("/v1/products/{sku}/customer-number", responses=problems(409))
async def set_product_number(
    sku: SkuPath, body: ProductNumberUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> ProductNumberRead:
    return await products.set_product_number(
        runtime=runtime, principal=principal, sku=sku, number=body.number
    )


@router.delete("/v1/products/{sku}/customer-number", status_code=status.HTTP_204_NO_CONTENT)
async def remove_product_number(
    sku: SkuPath, principal: CurrentPrincipal, runtime: Runtime
) -> Response:
    await products.remove_product_number(runtime=runtime, principal=principal, sku=sku)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/products", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_product(
    body: ProductCreate, principal: CurrentPrincipal, runtime: Runtime
) -> ProductRead:
    return await administration.create_product(runtime=runtime, principal=principal, body=body)


@router.put("/v1/customers/{org_id}/prices/{sku}")
async def set_customer_price(
    org_id: OrgIdPath,
    sku: SkuPath,
    body: CustomerPriceUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> CustomerPriceRead:
    return await administration.set_customer_price(
        runtime=runtime, principal=principal, org_id=org_id, sku=sku, price=body.price
    )


@router.delete("/v1/customers/{org_id}/prices/{sku}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_customer_price(
    org_id: OrgIdPath, sku: SkuPath, principal: CurrentPrincipal, runtime: Runtime
) -> Response:
    await administration.remove_customer_price(
        runtime=runtime, principal=principal, org_id=org_id, sku=sku
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/v1/customers/{org_id}/assortment")
async def set_assortment(
    org_id: OrgIdPath,
    body: AssortmentUpdate,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> AssortmentRead:
    return await administration.set_assortment(
        runtime=runtime, principal=principal, org_id=org_id, skus=body.skus
    )


@router.get("/v1/customers/{org_id}/groups")
async def get_customer_groups(
    org_id: OrgIdPath, principal: CurrentPrincipal, runtime: Runtime
) -> CustomerGroupsRead:
    return await administration.get_customer_groups(
        runtime=runtime, principal=principal, org_id=org_id
    )


@router.put("/v1/customers/{org_id}/groups")
async def set_customer_groups(
    org_id: OrgIdPath, body: CustomerGroupsUpdate, principal: CurrentPrincipal, runtime: Runtime
) -> CustomerGroupsRead:
    return await administration.set_customer_groups(
        runtime=runtime, principal=principal, org_id=org_id, groups=body.groups
    )


@router.post("/v1/promotions", status_code=status.HTTP_201_CREATED)
async def create_promotion(
    body: PromotionCreate, principal: CurrentPrincipal, runtime: Runtime
) -> PromotionRead:
    return await promotions.create_promotion(runtime=runtime, principal=principal, body=body)


@router.get("/v1/promotions")
async def list_promotions(
    principal: CurrentPrincipal,
    runtime: Runtime,
    status: PromotionStatus | None = None,
    org_id: Annotated[str | None, Query(max_length=36)] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=PROMOTIONS_PAGE_MAX)] = PROMOTIONS_PAGE_DEFAULT,
    cursor: CursorQuery = None,
) -> PromotionPage:
    """Newest first, a page at a time."""
    return await promotions.list_promotions(
        runtime=runtime,
        principal=principal,
        status=status,
        org_id=org_id,
        group=group,
        limit=limit,
        cursor=cursor,
    )


@router.get("/v1/promotions/{promotion_id}")
async def get_promotion(
    promotion_id: PromotionIdPath, principal: CurrentPrincipal, runtime: Runtime
) -> PromotionRead:
    return await promotions.get_promotion(
        runtime=runtime, principal=principal, promotion_id=promotion_id
    )


@router.post("/v1/promotions/{promotion_id}/end", responses=problems(409))
async def end_promotion(
    promotion_id: PromotionIdPath, principal: CurrentPrincipal, runtime: Runtime
) -> PromotionRead:
    return await promotions.end_promotion(
        runtime=runtime, principal=principal, promotion_id=promotion_id
    )
