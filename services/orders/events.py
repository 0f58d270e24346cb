"""Events orders publishes: the contracts in libs/contracts/orders.py (type and fields there)."""

from libs.contracts.orders import OrderCancelled, OrderedLine, OrderPlaced, Party

__all__ = ["OrderCancelled", "OrderPlaced", "OrderedLine", "Party"]
