"""Events orders publishes: the contracts in libs/contracts/orders.py (type and fields there)."""

from libs.contracts.orders import (
    BudgetCharged,
    BudgetDeleted,
    BudgetSet,
    OrderCancelled,
    OrderDecided,
    OrderedLine,
    OrderPlaced,
    Party,
)

__all__ = [
    "BudgetCharged",
    "BudgetDeleted",
    "BudgetSet",
    "OrderCancelled",
    "OrderDecided",
    "OrderPlaced",
    "OrderedLine",
    "Party",
]
