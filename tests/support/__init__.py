"""The tests' helpers in one place: the shared harness (devtools.harness, which the benchmarks
use too) and one builder per kind of person (people.py)."""

from devtools.harness import (
    PASSWORD,
    Api,
    World,
    act_as,
    audit_events,
    build_world,
    new_user,
    ok,
    unique,
    wait_until,
)
from tests.support.people import (
    acting_rep,
    buyer,
    caretaker_rep,
    csr_supervisor,
    customer_admin,
    platform_admin,
    security_reviewer,
)

__all__ = [
    "PASSWORD",
    "Api",
    "World",
    "act_as",
    "acting_rep",
    "audit_events",
    "build_world",
    "buyer",
    "caretaker_rep",
    "csr_supervisor",
    "customer_admin",
    "new_user",
    "ok",
    "platform_admin",
    "security_reviewer",
    "unique",
    "wait_until",
]
