"""Events cart publishes (CloudEvents `type`, past tense)."""

ITEM_ADDED = "cart.item.added"
ITEM_CHANGED = "cart.item.changed"
ITEM_REMOVED = "cart.item.removed"
CHECKED_OUT = "cart.checked_out"

LOCK_ACQUIRED = "cart.lock.acquired"
# Both holders are in the data: `previous_holder` and `holder`.
LOCK_TAKEN_OVER = "cart.lock.taken_over"
# `reason`: "released" by the holder, or "session_ended" with the holder's acting session.
LOCK_RELEASED = "cart.lock.released"

LIST_CREATED = "cart.saved_list.created"
LIST_RENAMED = "cart.saved_list.renamed"
LIST_DELETED = "cart.saved_list.deleted"
LIST_ITEM_ADDED = "cart.saved_list.item_added"
LIST_ITEM_CHANGED = "cart.saved_list.item_changed"
LIST_ITEM_REMOVED = "cart.saved_list.item_removed"
# A whole saved list went into the cart: one event for all its lines.
LIST_ADDED_TO_CART = "cart.saved_list.added_to_cart"
