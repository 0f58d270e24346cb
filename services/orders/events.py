"""Events orders publishes (CloudEvents `type`, past tense)."""

ORDER_PLACED = "orders.order.placed"
ORDER_CANCELLED = "orders.order.cancelled"
