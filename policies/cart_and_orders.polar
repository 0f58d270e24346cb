# Cart locks and take-over, saved lists, and cancelling orders: the rules the cart and orders
# services ask beyond the customer's world in onbehalf.polar.
# Resources: CartLock (the lock on an organisation's active cart), SavedList, PlacedOrder.
# Actions: lock, unlock, takeover (CartLock); read, change (SavedList); cancel (PlacedOrder).
# Whether a lock is held by someone else, or an order is still `placed`, is state, not policy:
# the services answer those with 409.

# ---------------------------------------------------------------- the customer's data

# The lock on a cart, the saved lists and each placed order belong to the customer
# organisation like its catalog, cart and order book, so the rules of onbehalf.polar let
# its users and its acting sessions read them.
customer_data(lock: CartLock, org_id) if lock.org_id = org_id;
customer_data(list: SavedList, org_id) if list.org_id = org_id;
customer_data(order: PlacedOrder, org_id) if order.org_id = org_id;

# ---------------------------------------------------------------- cart lock

# Only a staff member acting in full mode for the cart's organisation may hold its lock;
# the customer's own users never lock their cart.
may_hold_lock(session: ActingSession, lock: CartLock) if
    session.mode = "full" and
    lock.org_id = session.subject_org_id;

# Locking the cart before changing it is for whoever may hold the lock.
allow(session: ActingSession, "lock", lock: CartLock) if
    may_hold_lock(session, lock);

# Releasing it too (the cart service checks that the lock is the caller's own).
allow(session: ActingSession, "unlock", lock: CartLock) if
    may_hold_lock(session, lock);

# A CSR supervisor or a platform admin acting in full mode may always take over another
# staff member's lock.
allow(session: ActingSession, "takeover", lock: CartLock) if
    may_hold_lock(session, lock) and
    overrides_locks(session);

overrides_locks(session: ActingSession) if session.actor_has_role("csr_supervisor");
overrides_locks(session: ActingSession) if session.actor_has_role("platform_admin");

# Any staff member acting in full mode (a caretaker of the customer, or they could not act
# in full mode) may take over a lock its holder has left idle longer than the limit.
allow(session: ActingSession, "takeover", lock: CartLock) if
    may_hold_lock(session, lock) and
    lock.idle_seconds > lock.takeover_idle_seconds;

# A staff member may move their own lock to another of their acting sessions.
allow(session: ActingSession, "takeover", lock: CartLock) if
    may_hold_lock(session, lock) and
    lock.holder_id = session.actor_id;

# ---------------------------------------------------------------- saved lists

# The customer's buyers and admins change its saved lists (create, rename, add and remove
# items, delete, put a list into the cart); viewers only read them.
allow(user: CustomerUser, "change", list: SavedList) if
    user.active = true and
    list.org_id = user.org_id and
    buys(user);

# A full-mode acting session changes the subject's saved lists, as a buyer would.
allow(session: ActingSession, "change", list: SavedList) if
    session.mode = "full" and
    list.org_id = session.subject_org_id;

# ---------------------------------------------------------------- cancelling orders

# The customer's active admins cancel its orders; buyers and viewers do not.
allow(user: CustomerUser, "cancel", order: PlacedOrder) if
    user.active = true and
    order.org_id = user.org_id and
    user.has_role("admin");

# The buyer who placed an order that awaits a customer admin's approval may withdraw it
# (cancel it before anyone decided): it spent nothing yet, and it is their own request.
allow(user: CustomerUser, "cancel", order: PlacedOrder) if
    user.active = true and
    order.org_id = user.org_id and
    order.awaiting_approval = true and
    order.placed_by_id = user.id;

# A full-mode acting session cancels the subject's orders (the one admin-like right it has:
# undoing an order placed by mistake, often one it placed itself).
allow(session: ActingSession, "cancel", order: PlacedOrder) if
    session.mode = "full" and
    order.org_id = session.subject_org_id;

# ---------------------------------------------------------------- why a request was refused

# These are tried before the general reasons of reasons.polar (a rule that names the
# resource's class is more specific than one that does not); they never grant anything.

deny_reason(session: ActingSession, action, _lock: CartLock,
            "a view-mode acting session cannot lock the cart") if
    session.mode = "view" and
    action in ["lock", "unlock", "takeover"];
deny_reason(session: ActingSession, "takeover", lock: CartLock,
            "the cart lock is in use: only a csr_supervisor or platform_admin takes it over before it has been idle past the limit") if
    session.mode = "full" and
    lock.org_id = session.subject_org_id;
deny_reason(_user: CustomerUser, action, _lock: CartLock,
            "only a staff member acting in full mode locks the cart") if
    action in ["lock", "unlock", "takeover"];

deny_reason(user: CustomerUser, "change", list: SavedList,
            "a viewer cannot change saved lists") if
    user.active = true and
    list.org_id = user.org_id and
    not buys(user);

deny_reason(session: ActingSession, "cancel", _order: PlacedOrder,
            "a view-mode acting session cannot cancel orders") if
    session.mode = "view";
deny_reason(user: CustomerUser, "cancel", order: PlacedOrder,
            "only the customer's admins cancel orders; a buyer withdraws only their own order awaiting approval") if
    user.active = true and
    order.org_id = user.org_id and
    order.awaiting_approval = true;
deny_reason(user: CustomerUser, "cancel", order: PlacedOrder,
            "only the customer's admins cancel orders") if
    user.active = true and
    order.org_id = user.org_id;
