"""Events catalog publishes (CloudEvents `type`, past tense)."""

PRODUCT_CREATED = "catalog.product.created"
CUSTOMER_PRICE_SET = "catalog.customer_price.set"
ASSORTMENT_SET = "catalog.assortment.set"
