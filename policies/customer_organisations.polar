# A customer organisation's own people and money: invitations, how its admins hear of acting
# sessions, and budgets (docs/customer-organisations.md). Managing its employees is
# `manage_users` in onbehalf.polar.
# Actions: invite, set_notices (CustomerOrg); manage, approve, read_own (Budgets).
# Uses customer_admin_of/2 from onbehalf.polar. None of these rules names an ActingSession:
# nothing here is ever allowed while acting, and the reasons below say so.

# ---------------------------------------------------------------- invitations and notices

# A customer's active admin invites contacts to become users of their own organisation
# (and lists, resends and revokes those invitations).
allow(user: CustomerUser, "invite", org: CustomerOrg) if
    customer_admin_of(user, org);

# A customer's active admin chooses how the organisation's admins hear of acting sessions
# (every session, a daily digest, or not at all).
allow(user: CustomerUser, "set_notices", org: CustomerOrg) if
    customer_admin_of(user, org);

# Platform admins do both for any customer organisation (not for the seller's own: staff
# are created by platform admins, never invited into the seller).
allow(staff: StaffUser, action, org: CustomerOrg) if
    action in ["invite", "set_notices"] and
    staff.active = true and
    staff.has_role("platform_admin") and
    org.is_seller = false;

# ---------------------------------------------------------------- budgets

# A customer's active admin sets its budgets and approves or rejects the orders that wait
# because they exceed one. Platform admins do not: a budget is the customer's own decision.
allow(user: CustomerUser, action, budgets: Budgets) if
    action in ["manage", "approve"] and
    user.active = true and
    user.has_role("admin") and
    budgets.org_id = user.org_id;

# A customer's active buyers and admins read the one budget their own orders count against
# (what is left this period), nothing of the others'. Viewers place no orders.
allow(user: CustomerUser, "read_own", budgets: Budgets) if
    user.active = true and
    budgets.org_id = user.org_id and
    (user.has_role("buyer") or user.has_role("admin"));

# ---------------------------------------------------------------- why a request was refused

deny_reason(_session: ActingSession, action, _org: CustomerOrg,
            "the customer's invitations and notices are never managed while acting") if
    action in ["invite", "set_notices"];
deny_reason(_session: ActingSession, "read_own", _budgets: Budgets,
            "an acting session has no budget of its own: an order placed while acting counts against the assisted-orders budget, and a refusal says what is left");
deny_reason(_session: ActingSession, _action, _budgets: Budgets,
            "budgets are never managed or approved while acting on behalf of a customer");
deny_reason(_staff: StaffUser, action, org: CustomerOrg,
            "the seller's own staff are created by platform admins, not invited") if
    action in ["invite", "set_notices"] and
    org.is_seller = true;
deny_reason(staff: StaffUser, action, _org: CustomerOrg,
            "only platform admins invite a customer's users and set its notices") if
    staff.active = true and
    action in ["invite", "set_notices"];
deny_reason(_staff: StaffUser, "read_own", _budgets: Budgets,
            "staff have no budget: budgets are the customer's, for its own users' orders");
deny_reason(_staff: StaffUser, _action, _budgets: Budgets,
            "budgets are the customer's own: only its admins set and approve them");
deny_reason(user: CustomerUser, action, org: CustomerOrg,
            "only the customer's admin invites users and sets its notices") if
    user.active = true and
    user.org_id = org.id and
    action in ["invite", "set_notices"];
deny_reason(user: CustomerUser, _action, budgets: Budgets,
            "this is another customer organisation's budget") if
    user.active = true and
    budgets.org_id != user.org_id;
deny_reason(user: CustomerUser, "read_own", budgets: Budgets,
            "viewers place no orders, so no budget holds theirs") if
    user.active = true and
    budgets.org_id = user.org_id;
deny_reason(user: CustomerUser, _action, _budgets: Budgets,
            "only the customer's admin sets budgets and approves orders") if
    user.active = true;
