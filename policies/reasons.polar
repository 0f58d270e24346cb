# Why a request was refused. The authorizer asks `deny_reason` only after `allow`
# failed and returns the first reason that matches; these rules never grant anything.

# Nothing sensitive happens while acting: no nested session, no administration,
# no audit log.
deny_reason(_session: ActingSession, action, _org: CustomerOrg,
            "an acting session cannot start another acting session") if
    action in ["act_full", "act_view"];
deny_reason(_session: ActingSession, _action, _admin: Administration,
            "administration is never allowed while acting on behalf of a customer");
deny_reason(_session: ActingSession, _action, _log: AuditLog,
            "the audit log cannot be read while acting on behalf of a customer");
deny_reason(_session: ActingSession, action, _org: CustomerOrg,
            "the customer's users, consent and sessions are never managed while acting") if
    action in ["manage_users", "set_consent", "read_acting_sessions"];
deny_reason(_session: ActingSession, "change_credentials", _account: Account,
            "credentials are never changed while acting on behalf of a customer");

# Acting refusals, most fundamental first.
deny_reason(staff: StaffUser, _action, _org: CustomerOrg, "staff member is inactive") if
    staff.active = false;
deny_reason(_staff: StaffUser, action, _org: CustomerOrg,
            "only platform admins manage a customer's users and consent") if
    action in ["manage_users", "set_consent"];
deny_reason(_staff: StaffUser, "read_acting_sessions", _org: CustomerOrg,
            "only platform admins and security reviewers see another organisation's sessions");
deny_reason(_staff: StaffUser, action, org: CustomerOrg,
            "the seller's own organisation cannot be acted for") if
    action in ["act_full", "act_view"] and
    org.is_seller = true;
deny_reason(_staff: StaffUser, action, org: CustomerOrg,
            "customer organisation is not active") if
    action in ["act_full", "act_view"] and
    org.status != "active";
deny_reason(_staff: StaffUser, action, org: CustomerOrg,
            "customer organisation has refused remote assistance") if
    action in ["act_full", "act_view"] and
    org.allow_assistance = false;
deny_reason(staff: StaffUser, action, org: CustomerOrg,
            "not a caretaker of this customer organisation") if
    action in ["act_full", "act_view"] and
    not staff.has_role("platform_admin") and
    not org.has_caretaker(staff.id);
deny_reason(staff: StaffUser, "act_full", _org: CustomerOrg,
            "missing permission place_orders_as_customer") if
    not staff.has_permission("place_orders_as_customer");
deny_reason(_staff: StaffUser, "act_view", _org: CustomerOrg,
            "missing permission view_as_customer or place_orders_as_customer");

# Acting sessions stay inside their subject and their mode.
deny_reason(session: ActingSession, _action, resource,
            "this belongs to another customer organisation than the acting session's") if
    not customer_data(resource, session.subject_org_id);
deny_reason(session: ActingSession, action, _resource,
            "a view-mode acting session cannot change anything") if
    session.mode = "view" and
    action in ["change", "place"];

# Customer users stay inside their organisation and their role.
deny_reason(user: CustomerUser, _action, _resource, "user is inactive") if
    user.active = false;
deny_reason(user: CustomerUser, _action, resource,
            "this belongs to another customer organisation") if
    not customer_data(resource, user.org_id);
deny_reason(user: CustomerUser, action, _resource,
            "a viewer cannot change the cart or place orders") if
    action in ["change", "place"] and
    not buys(user);
deny_reason(_user: CustomerUser, _action, _admin: Administration,
            "customer users cannot administer the platform");
deny_reason(_user: CustomerUser, _action, _log: AuditLog,
            "customer users cannot read the audit log");
deny_reason(user: CustomerUser, action, _org: CustomerOrg,
            "customer users cannot act on behalf of an organisation") if
    user.active = true and
    action in ["act_full", "act_view"];
deny_reason(user: CustomerUser, _action, org: CustomerOrg,
            "this is another customer organisation") if
    user.active = true and
    user.org_id != org.id;
deny_reason(user: CustomerUser, action, _org: CustomerOrg,
            "only the customer's admin manages its users, consent and sessions") if
    user.active = true and
    action in ["manage_users", "set_consent", "read_acting_sessions"];

# Credentials are one's own.
deny_reason(user: CustomerUser, "change_credentials", account: Account,
            "users change only their own credentials") if
    user.active = true and
    account.user_id != user.id;
deny_reason(staff: StaffUser, "change_credentials", account: Account,
            "users change only their own credentials") if
    staff.active = true and
    account.user_id != staff.id;

# The seller's side.
deny_reason(staff: StaffUser, _action, _resource, "staff member is inactive") if
    staff.active = false;
deny_reason(staff: StaffUser, "manage", _admin: Administration,
            "only platform admins administer the platform") if
    staff.active = true;
deny_reason(staff: StaffUser, "rotate_keys", _admin: Administration,
            "only platform admins rotate the signing keys") if
    staff.active = true;
deny_reason(staff: StaffUser, "introspect_tokens", _admin: Administration,
            "only platform admins introspect tokens") if
    staff.active = true;
deny_reason(staff: StaffUser, "read", _log: AuditLog,
            "only security reviewers and platform admins read the audit log") if
    staff.active = true;
deny_reason(staff: StaffUser, "checkpoint", _log: AuditLog,
            "only security reviewers and platform admins have the audit log checkpointed") if
    staff.active = true;
deny_reason(_principal, action, _log: AuditLog, "the audit log is append-only") if
    action != "read" and action != "checkpoint";
deny_reason(_staff: StaffUser, _action, resource,
            "staff reach a customer's catalog, cart and orders only by acting as the customer") if
    customer_data(resource, _);
