"""The policy decision cache never serves an answer the real policy would not give now."""

from __future__ import annotations

import shutil
from pathlib import Path

from libs.common.authz import Authorizer
from libs.common.principals import StaffUser
from libs.common.resources import Cart, CustomerOrg

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
RULE = 'staff.has_permission("place_orders_as_customer");'


def _policies(tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    copy.mkdir()
    for path in POLICY_DIR.glob("*.polar"):
        shutil.copy(path, copy / path.name)
    return copy


def _rep(**changes: object) -> StaffUser:
    rep = StaffUser(
        id="rep-1", org_id="seller", name="Rep", roles=["sales_rep"],
        permissions=["place_orders_as_customer"],
    )  # fmt: skip
    for name, value in changes.items():
        setattr(rep, name, value)
    return rep


def _org(**changes: object) -> CustomerOrg:
    org = CustomerOrg(id="org-1", name="Customer", caretaker_ids=["rep-1"])
    for name, value in changes.items():
        setattr(org, name, value)
    return org


def test_a_reload_changes_the_decision_for_a_cached_key(tmp_path: Path) -> None:
    policy_dir = _policies(tmp_path)
    authorizer = Authorizer(policy_dir)
    assert authorizer.decide(_rep(), "act_full", _org()).allowed
    hits = authorizer.cache_hits
    assert authorizer.decide(_rep(), "act_full", _org()).allowed
    assert authorizer.cache_hits == hits + 1, "the second, equal question is a cache hit"
    before = authorizer.revision

    # A reviewer renames the permission the rule asks for, and the policy is reloaded.
    rules = policy_dir / "onbehalf.polar"
    assert RULE in rules.read_text()
    rules.write_text(rules.read_text().replace(RULE, RULE.replace("customer", "customer_v2")))
    assert authorizer.reload() != before

    decision = authorizer.decide(_rep(), "act_full", _org())
    assert not decision.allowed, "the cached allow of the old policy was served after a reload"
    assert decision.revision == authorizer.revision
    assert decision.reason


def test_any_attribute_the_rules_read_is_part_of_the_key(tmp_path: Path) -> None:
    authorizer = Authorizer(_policies(tmp_path))
    assert authorizer.decide(_rep(), "act_full", _org()).allowed
    # Same ids, other facts: each must be decided afresh, not answered from the cache.
    assert not authorizer.decide(_rep(permissions=[]), "act_full", _org()).allowed
    assert not authorizer.decide(_rep(active=False), "act_full", _org()).allowed
    assert not authorizer.decide(_rep(), "act_full", _org(caretaker_ids=[])).allowed
    assert not authorizer.decide(_rep(), "act_full", _org(status="obsolete")).allowed
    assert not authorizer.decide(_rep(), "act_full", _org(allow_assistance=False)).allowed
    # The same principal, another resource class with the same org id: another question.
    assert authorizer.decide(_rep(), "act_full", _org()).allowed
    assert not authorizer.decide(_rep(), "change", Cart(org_id="org-1")).allowed


def test_cached_denials_keep_the_policy_reason(tmp_path: Path) -> None:
    authorizer = Authorizer(_policies(tmp_path))
    first = authorizer.decide(_rep(), "act_full", _org(status="obsolete"))
    again = authorizer.decide(_rep(), "act_full", _org(status="obsolete"))
    assert not first.allowed and not again.allowed
    assert first.reason == again.reason and first.reason


def test_cached_conditions_follow_a_reload_and_the_callers_attributes(tmp_path: Path) -> None:
    policy_dir = _policies(tmp_path)
    authorizer = Authorizer(policy_dir)
    first = authorizer.conditions(_rep(), "act_full", CustomerOrg)
    assert first, "a caretaking rep with the permission may act for some organisations"
    assert authorizer.conditions(_rep(), "act_full", CustomerOrg) == first
    # Another attribute the rules read: another key, answered afresh.
    assert authorizer.conditions(_rep(permissions=[]), "act_full", CustomerOrg) == []

    rules = policy_dir / "onbehalf.polar"
    rules.write_text(rules.read_text().replace(RULE, RULE.replace("customer", "customer_v2")))
    authorizer.reload()
    assert authorizer.conditions(_rep(), "act_full", CustomerOrg) == [], (
        "the conditions cached under the old policy were served after a reload"
    )
