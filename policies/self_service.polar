# A user's own settings: preferences (a staff member's default customer after login, the
# login-link opt-in) and a personal login link (docs/customer-organisations.md, identity's
# preferences.py and login_links.py).
# Actions: set_preferences (Account); create (LoginLink). Revoking one's link is
# change_credentials on one's Account (onbehalf.polar). Nothing here names an ActingSession:
# none of it is ever done while acting.

allow(user: StaffUser, "set_preferences", account: Account) if
    user.active = true and
    account.user_id = user.id;
allow(user: CustomerUser, "set_preferences", account: Account) if
    user.active = true and
    account.user_id = user.id;

# A link logs its holder in without a password: only where the platform allows links, for
# a user who asked for one, and not for staff who can act for customers unless the platform
# says so too (docs/decisions.md: a link to every customer they care for).
allow(user: CustomerUser, "create", link: LoginLink) if
    user.active = true and
    link.user_id = user.id and
    customer_data(link, user.org_id) and
    link.platform_allows = true and
    link.opted_in = true;
allow(staff: StaffUser, "create", link: LoginLink) if
    staff.active = true and
    link.user_id = staff.id and
    link.platform_allows = true and
    link.opted_in = true and
    link_for_staff(staff, link);

# A customer user's link is of their own organisation.
customer_data(link: LoginLink, org_id) if link.org_id = org_id;

# Staff who can act for customers (either mode, or as platform admins) get a link only where
# the platform allows it for them too.
link_for_staff(_staff: StaffUser, link: LoginLink) if
    link.allowed_for_acting_staff = true;
link_for_staff(staff: StaffUser, _link: LoginLink) if
    not staff.has_permission("place_orders_as_customer") and
    not staff.has_permission("view_as_customer") and
    not staff.has_role("platform_admin");

# ---------------------------------------------------------------- why a request was refused

deny_reason(_session: ActingSession, "set_preferences", _account: Account,
            "preferences are never changed while acting on behalf of a customer");
deny_reason(_session: ActingSession, _action, _link: LoginLink,
            "login links are never made while acting on behalf of a customer");
deny_reason(user: StaffUser, "set_preferences", account: Account,
            "users change only their own preferences") if
    user.active = true and
    account.user_id != user.id;
deny_reason(user: CustomerUser, "set_preferences", account: Account,
            "users change only their own preferences") if
    user.active = true and
    account.user_id != user.id;
deny_reason(user: CustomerUser, _action, link: LoginLink, "login links are one's own") if
    user.active = true and
    link.user_id != user.id;
deny_reason(user: StaffUser, _action, link: LoginLink, "login links are one's own") if
    user.active = true and
    link.user_id != user.id;
deny_reason(_user, _action, link: LoginLink,
            "personal login links are switched off on this platform") if
    link.platform_allows = false;
deny_reason(_user, _action, link: LoginLink,
            "opt in first: PUT /v1/me/preferences with login_link true") if
    link.platform_allows = true and
    link.opted_in = false;
deny_reason(staff: StaffUser, _action, link: LoginLink,
            "staff who can act for customers log in with their password") if
    staff.active = true and
    link.platform_allows = true and
    link.opted_in = true and
    link.allowed_for_acting_staff = false;
