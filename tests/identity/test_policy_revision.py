"""The policy in force: a change applies on restart and shows in events; a broken one stops start-up."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import httpx

from libs.common.authz import policy_files, policy_revision
from libs.common.settings import default_policy_dir
from onbehalf.stack import start_nats, start_service, start_stack
from tests.support import Api, ok, wait_until


def test_a_changed_policy_applies_after_restart_and_shows_in_events(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir, ignore=shutil.ignore_patterns("tests"))
    password = secrets.token_urlsafe(12)
    stack = start_stack(
        tmp_path / "stack",
        admin_email="admin@rev.test",
        admin_password=password,
        extra_env={"ONBEHALF_POLICY_DIR": str(policy_dir)},
    )
    try:
        with httpx.Client(timeout=10.0) as client:
            before = policy_revision(policy_files(policy_dir))
            assert ok(client.get(stack.url("identity") + "/healthz"))["policy_revision"] == before

            # A reviewer tightens the policy: platform admins may no longer act fully.
            rules = policy_dir / "onbehalf.polar"
            admin_rule = (
                "may_act_fully(staff: StaffUser, _org: CustomerOrg) if\n"
                '    staff.has_role("platform_admin");\n'
            )
            assert admin_rule in rules.read_text()
            rules.write_text(rules.read_text().replace(admin_rule, ""))
            after = policy_revision(policy_files(policy_dir))
            assert after != before
            stack.restart("identity")
            assert ok(client.get(stack.url("identity") + "/healthz"))["policy_revision"] == after

            admin = Api(stack=stack, client=client).login("admin@rev.test", password)
            org = ok(
                admin.post(
                    "identity",
                    "/v1/orgs",
                    json={"name": "Rev Co", "contract_number": "REV-1", "country": "DE"},
                ),
                201,
            )
            refused = admin.post(
                "identity", "/v1/acting-as", json={"customer_org_id": org["id"], "mode": "full"}
            )
            assert refused.status_code == 403
            # reasons.polar still exempts admins from "not a caretaker": the generic reason.
            assert refused.json()["reason"].startswith("no policy rule allows")

            def denial() -> list[dict[str, object]]:
                body = ok(
                    admin.get(
                        "audit",
                        "/v1/audit/events",
                        params={"type": "com.onbehalf.identity.acting_session.denied"},
                    )
                )
                return list(body["items"])

            [event] = wait_until(denial, what="the denial audited")
            assert event["policy_revision"] == after
    finally:
        stack.stop()


def test_a_service_refuses_to_start_on_an_invalid_policy(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir, ignore=shutil.ignore_patterns("tests"))
    (policy_dir / "broken.polar").write_text(
        'allow(actor: StaffUser, "read", thing: Nonexistent) if\n    thing.x = 1;\n'
    )
    nats = start_nats(tmp_path / "nats")
    try:
        service = start_service(
            "catalog",
            port=0,
            env={
                "NATS_URL": nats.url,
                "ONBEHALF_POLICY_DIR": str(policy_dir),
                "ONBEHALF_DATA_DIR": str(tmp_path / "db"),
            },
            log_dir=tmp_path / "logs",
        )
        code = service.process.wait(timeout=60)
        assert code != 0
        log = service.log_path.read_text()
        assert "PolicyError" in log and "broken.polar" in log
    finally:
        nats.stop()
