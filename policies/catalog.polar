# Catalog rules beyond reading: a customer's own product numbers.
# Resource: CustomerProductNumbers (the numbers one customer organisation gives to products).
# Action: edit (set or remove a number). Reading them is reading the customer's catalog.
# Uses customer_data/2 and buys/1 from onbehalf.polar.

# A customer's own product numbers are its data, like its catalog: its active users and
# acting sessions for it read them, and staff who are not acting are told to act first.
customer_data(numbers: CustomerProductNumbers, org_id) if numbers.org_id = org_id;

# Buyers and the customer's admins maintain their organisation's own product numbers.
allow(user: CustomerUser, "edit", numbers: CustomerProductNumbers) if
    user.active = true and
    numbers.org_id = user.org_id and
    buys(user);

# A full-mode acting session maintains them for its subject, as the customer's buyer would.
allow(session: ActingSession, "edit", numbers: CustomerProductNumbers) if
    session.mode = "full" and
    numbers.org_id = session.subject_org_id;

# Why editing product numbers was refused, where reasons.polar has no fitting reason.
# Each is limited to the principal's own organisation, so "another organisation" and
# "inactive" refusals keep their own reasons.

# A read-only acting session looks at the numbers but never changes them.
deny_reason(session: ActingSession, "edit", numbers: CustomerProductNumbers,
            "a view-mode acting session cannot change customer product numbers") if
    session.mode = "view" and
    numbers.org_id = session.subject_org_id;

# A customer's viewer sees the numbers; only buyers and admins change them.
deny_reason(user: CustomerUser, "edit", numbers: CustomerProductNumbers,
            "a viewer cannot change customer product numbers") if
    user.active = true and
    numbers.org_id = user.org_id and
    not buys(user);
