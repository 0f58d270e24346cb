"""Events cart publishes (CloudEvents `type`, past tense)."""

ITEM_ADDED = "cart.item.added"
ITEM_CHANGED = "cart.item.changed"
ITEM_REMOVED = "cart.item.removed"
CHECKED_OUT = "cart.checked_out"
