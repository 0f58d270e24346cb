"""Events catalog publishes: the contracts in libs/contracts/catalog.py (type and fields there)."""

from libs.contracts.catalog import (
    AssortmentSet,
    CustomerGroupsSet,
    CustomerPriceRemoved,
    CustomerPriceSet,
    CustomerProductNumberRemoved,
    CustomerProductNumberSet,
    ProductCreated,
    PromotionCreated,
    PromotionEnded,
)

__all__ = [
    "AssortmentSet",
    "CustomerGroupsSet",
    "CustomerPriceRemoved",
    "CustomerPriceSet",
    "CustomerProductNumberRemoved",
    "CustomerProductNumberSet",
    "ProductCreated",
    "PromotionCreated",
    "PromotionEnded",
]
