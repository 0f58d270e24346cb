# onbehalf default policy: who may act for whom, and what an acting session may do.
# Principals: StaffUser, CustomerUser, ActingSession (a staff member acting for a customer).
# Resources: CustomerOrg, Catalog, Cart, OrderBook, AuditLog, Administration.
# Resources also: Account (a user's own credentials).
# Actions: act_full, act_view (start acting), read, change (cart), place (orders), manage,
#          manage_users, set_consent, read_acting_sessions (organisations),
#          change_credentials (accounts).

actor StaffUser {}
actor CustomerUser {}
actor ActingSession {}

# ---------------------------------------------------------------- acting for a customer

# Staff can help an organisation at all only if the staff member is active and the
# organisation is an active customer (never the seller itself) that has not refused
# remote assistance.
assistable(staff: StaffUser, org: CustomerOrg) if
    staff.active = true and
    org.is_seller = false and
    org.status = "active" and
    org.allow_assistance = true;

# Full acting (change the cart, place orders) is for a caretaker of the organisation
# who holds the permission "place orders as customer", or for a platform admin.
allow(staff: StaffUser, "act_full", org: CustomerOrg) if
    assistable(staff, org) and
    may_act_fully(staff, org);

may_act_fully(staff: StaffUser, _org: CustomerOrg) if
    staff.has_role("platform_admin");
may_act_fully(staff: StaffUser, org: CustomerOrg) if
    staff.id in org.caretaker_ids and
    staff.has_permission("place_orders_as_customer");

# Read-only acting is for whoever may act fully, and for a caretaker who holds the
# weaker permission "view as customer".
allow(staff: StaffUser, "act_view", org: CustomerOrg) if
    allow(staff, "act_full", org);
allow(staff: StaffUser, "act_view", org: CustomerOrg) if
    assistable(staff, org) and
    staff.id in org.caretaker_ids and
    staff.has_permission("view_as_customer");

# ---------------------------------------------------------------- the customer's world

# The catalog, the cart and the orders of a customer organisation are its data.
customer_data(catalog: Catalog, org_id) if catalog.org_id = org_id;
customer_data(cart: Cart, org_id) if cart.org_id = org_id;
customer_data(book: OrderBook, org_id) if book.org_id = org_id;

# An acting session, in either mode, reads what its subject's own users read.
allow(session: ActingSession, "read", resource) if
    customer_data(resource, session.subject_org_id);

# Only a full-mode acting session changes the subject's cart and places its orders;
# it acts with buyer rights, never with the customer's admin rights.
allow(session: ActingSession, "change", cart: Cart) if
    session.mode = "full" and
    cart.org_id = session.subject_org_id;
allow(session: ActingSession, "place", book: OrderBook) if
    session.mode = "full" and
    book.org_id = session.subject_org_id;

# A customer's active users read their own organisation's catalog, cart and orders.
allow(user: CustomerUser, "read", resource) if
    user.active = true and
    customer_data(resource, user.org_id);

# Buyers and the customer's admins change the cart and place orders; viewers only look.
allow(user: CustomerUser, "change", cart: Cart) if
    user.active = true and
    cart.org_id = user.org_id and
    buys(user);
allow(user: CustomerUser, "place", book: OrderBook) if
    user.active = true and
    book.org_id = user.org_id and
    buys(user);

buys(user: CustomerUser) if user.has_role("buyer");
buys(user: CustomerUser) if user.has_role("admin");

# ---------------------------------------------------------------- the customer's own settings

# A customer's active admin manages the users of their own organisation.
allow(user: CustomerUser, "manage_users", org: CustomerOrg) if
    customer_admin_of(user, org);

# Only the customer's own admin gives or withdraws the organisation's consent to remote
# assistance (a platform admin may too, below); an acting session never can.
allow(user: CustomerUser, "set_consent", org: CustomerOrg) if
    customer_admin_of(user, org);

# Transparency: a customer's admin sees every acting session held on their organisation.
allow(user: CustomerUser, "read_acting_sessions", org: CustomerOrg) if
    customer_admin_of(user, org);

customer_admin_of(user: CustomerUser, org: CustomerOrg) if
    user.active = true and
    user.has_role("admin") and
    user.org_id = org.id;

# Every active user changes their own credentials; an acting session is not a user and
# never changes the customer's (nor the staff member's) credentials.
allow(user: StaffUser, "change_credentials", account: Account) if
    user.active = true and
    account.user_id = user.id;
allow(user: CustomerUser, "change_credentials", account: Account) if
    user.active = true and
    account.user_id = user.id;

# ---------------------------------------------------------------- the seller's side

# Platform admins administer organisations, users, caretakers, products and prices.
allow(staff: StaffUser, "manage", _admin: Administration) if
    staff.active = true and
    staff.has_role("platform_admin");

# Platform admins manage every organisation's users, consent, and see its acting sessions.
allow(staff: StaffUser, action, _org: CustomerOrg) if
    action in ["manage_users", "set_consent", "read_acting_sessions"] and
    staff.active = true and
    staff.has_role("platform_admin");

# Security reviewers see the acting sessions held on any organisation.
allow(staff: StaffUser, "read_acting_sessions", _org: CustomerOrg) if
    staff.active = true and
    staff.has_role("security_reviewer");

# Security reviewers and platform admins read the audit log. An acting session never
# does: it is not a StaffUser, so no rule here matches it.
allow(staff: StaffUser, "read", _log: AuditLog) if
    staff.active = true and
    reads_audit(staff);

reads_audit(staff: StaffUser) if staff.has_role("security_reviewer");
reads_audit(staff: StaffUser) if staff.has_role("platform_admin");

# Whoever reads the log may also have audit sign a checkpoint of its head now (it adds
# nothing to the log but an event saying who asked; see docs/audit.md).
allow(staff: StaffUser, "checkpoint", _log: AuditLog) if
    staff.active = true and
    reads_audit(staff);

# Platform admins rotate identity's token-signing keys (`onbehalf keys rotate`).
allow(staff: StaffUser, "rotate_keys", admin: Administration) if
    admin.area = "keys" and
    staff.active = true and
    staff.has_role("platform_admin");

# Platform admins introspect tokens (RFC 7662, POST /oauth/introspect): a resource server
# outside the five authenticates with a platform admin's token to learn whether a token
# still holds (docs/oauth.md).
allow(staff: StaffUser, "introspect_tokens", admin: Administration) if
    admin.area = "tokens" and
    staff.active = true and
    staff.has_role("platform_admin");
