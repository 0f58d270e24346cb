"""Cart's settings."""

from __future__ import annotations

from pydantic import Field

from libs.common.runtime import ServiceRuntime
from libs.common.settings import ServiceSettings


class CartSettings(ServiceSettings):
    service_name: str = "cart"
    port: int = 8003
    # The most of one product a cart line or a saved-list line may hold.
    max_quantity: int = 10_000
    # A lock its holder has not used for longer than this may be taken over by any staff
    # member acting in full mode (the policy decides; supervisors need not wait).
    lock_takeover_idle_seconds: int = 600
    # When true, an acting session changes the cart only while it holds the lock; by default
    # locking is the staff member's choice and an unlocked cart is open to every buyer.
    require_lock_for_acting_changes: bool = False
    # The safety net (placed orders empty their cart even when orders' checkout request did
    # not) waits this long for more orders before it reads which are done: it almost never
    # has work, so one read, one handling and two pull requests serve many orders.
    checkout_net_linger_seconds: float = Field(default=0.25, ge=0, le=5)
    max_saved_lists: int = 200
    max_saved_list_items: int = 500


def cart_settings(runtime: ServiceRuntime) -> CartSettings:
    """Cart's own settings, as the runtime was started with them (app.py): business functions
    reach them through the runtime, like everything else they need."""
    return runtime.settings_as(CartSettings)
