"""GET /v1/customers narrows the organisations with a filter derived from the policy: change
the policy file, and the list changes with it (no rule of the policy is copied into SQL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import column, select, table

from libs.common.authz import Authorizer
from libs.common.policy_filter import Untranslatable, sql_filter
from libs.common.principals import StaffUser
from libs.common.resources import CustomerOrg
from onbehalf.stack import ServiceProcess, Stack, free_port, start_service, wait_healthy
from tests.support import Api, World, ok

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
CARETAKER = "staff.id in org.caretaker_ids"


def _policies(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "policies"
    copy.mkdir()
    for path in POLICY_DIR.glob("*.polar"):
        shutil.copy(path, copy / path.name)
    rules = copy / "onbehalf.polar"
    assert old in rules.read_text()
    rules.write_text(rules.read_text().replace(old, new))
    return copy


def _names(api: Api, identity_url: str, q: str) -> list[str]:
    response = api.client.get(
        identity_url + "/v1/customers", params={"q": q}, headers=api.headers()
    )
    return [item["name"] for item in ok(response)["items"]]


@pytest.fixture
def identity_with_changed_policy(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A second identity process on the same database whose policy lets every active sales
    rep view every assistable customer, caretaker or not."""
    policy_dir = _policies(tmp_path, CARETAKER, f'({CARETAKER} or staff.has_role("sales_rep"))')
    env = {**stack.service_env("identity"), "ONBEHALF_POLICY_DIR": str(policy_dir)}
    process = start_service("identity", port=free_port(), env=env, log_dir=tmp_path / "logs")
    try:
        wait_healthy(process)
        yield process
    finally:
        process.stop()


def test_changing_the_policy_file_changes_the_customer_list(
    world: World, identity_with_changed_policy: ServiceProcess
) -> None:
    rep = world.login(world.rep)
    default_url = world.admin.stack.url("identity")
    name_a, name_b = world.org_a["name"], world.org_b["name"]
    # Default policy: the rep cares for A only.
    assert _names(rep, default_url, name_a) == [name_a]
    assert _names(rep, default_url, name_b) == []
    # The changed policy: caretaking no longer matters, B is listed too.
    changed_url = identity_with_changed_policy.url
    assert _names(rep, changed_url, name_a) == [name_a]
    assert _names(rep, changed_url, name_b) == [name_b]


def test_the_filter_is_the_policys_conditions() -> None:
    authorizer = Authorizer(POLICY_DIR)
    rep = StaffUser(
        id="rep-1", org_id="seller", name="Rep", roles=["sales_rep"],
        permissions=["place_orders_as_customer"],
    )  # fmt: skip
    orgs = table("orgs", column("id"), column("status"), column("allow_assistance"),
                 column("is_seller"), column("name"))  # fmt: skip
    links = table("links", column("org_id"), column("user_id"))
    where = sql_filter(
        authorizer.conditions(rep, "act_view", CustomerOrg),
        resource=CustomerOrg,
        columns={
            name: orgs.c[name] for name in ("id", "status", "allow_assistance", "is_seller", "name")
        },
        relations={
            "caretaker_ids": lambda user_id: orgs.c.id.in_(
                select(links.c.org_id).where(links.c.user_id == user_id)
            )
        },
    )
    sql = str(select(orgs.c.id).where(where).compile(compile_kwargs={"literal_binds": True}))
    for condition in ("orgs.status = 'active'", "orgs.is_seller", "allow_assistance",
                      "links.user_id = 'rep-1'"):  # fmt: skip
        assert condition in sql, sql
    # An inactive rep: the policy allows nothing, and the filter selects nothing.
    rep.active = False
    assert authorizer.conditions(rep, "act_view", CustomerOrg) == []


def test_what_the_filter_cannot_say_is_refused_not_guessed(tmp_path: Path) -> None:
    # A rule calling a method of the organisation can only be decided row by row.
    authorizer = Authorizer(_policies(tmp_path, CARETAKER, "org.has_caretaker(staff.id)"))
    rep = StaffUser(id="rep-1", org_id="seller", name="Rep", roles=["sales_rep"])
    with pytest.raises(Untranslatable):
        authorizer.conditions(rep, "act_view", CustomerOrg)


def test_an_admin_lists_without_caretaking(world: World, http: httpx.Client) -> None:
    name_b = world.org_b["name"]
    assert _names(world.admin, world.admin.stack.url("identity"), name_b) == [name_b]
