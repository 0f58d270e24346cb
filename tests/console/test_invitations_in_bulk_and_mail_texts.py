"""Two pages in a real browser: a customer admin invites several colleagues at once (each
line's answer shown: invited, or refused with identity's reason), and a platform admin changes
the text of a mail identity sends (then puts the built-in text back); others are refused."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from onbehalf.stack import Stack
from tests.console.browsing import person, shot, sign_in
from tests.customers.mailbox import wait_for_mail
from tests.support import World, customer_admin, ok, platform_admin, unique


def test_the_admin_invites_several_colleagues_and_sees_each_lines_answer(
    world: World, stack: Stack, browser: Browser, console_url: str
) -> None:
    admin_api, admin_user = customer_admin(world, world.org_a)
    first, second = (unique(n) + "@example.test" for n in ("anna", "ben"))
    lines = "\n".join(
        [
            f"{first}, Anna Berg",
            "",
            f"{world.viewer_a['email']}, Already Ours",
            "not an address",
            f"{second} , Ben Cole",
            f"{first.upper()}, Anna Again",
        ]
    )
    with person(browser, console_url) as page:
        sign_in(page, admin_user["email"])
        page.get_by_role("link", name="Invitations").click()
        page.get_by_label("Colleagues to invite, one per line").fill(lines)
        page.get_by_label("Invited as").select_option("viewer")
        page.get_by_role("button", name="Send these invitations").click()
        results = page.locator("#bulk-results tbody")
        expect(results.locator("tr")).to_have_count(5)
        expect(results.locator("tr[data-line='1'] .result")).to_have_text("invited")
        expect(results.locator("tr[data-line='3'] .result")).to_contain_text(
            "refused: " + world.viewer_a["email"]
        )
        expect(results.locator("tr[data-line='3'] .result")).to_contain_text("account")
        expect(results.locator("tr[data-line='4'] .result")).to_contain_text('"email, name"')
        expect(results.locator("tr[data-line='5'] .result")).to_have_text("invited")
        expect(results.locator("tr[data-line='6'] .result")).to_contain_text("twice")
        # The list below already holds the new invitations.
        expect(page.locator("#invitations tbody")).to_contain_text(first)
        expect(page.locator("#invitations tbody")).to_contain_text(second)
        shot(page, "invitations-bulk")

    listed = ok(
        admin_api.get(
            "identity", f"/v1/orgs/{world.org_a['id']}/invitations", params={"status": "pending"}
        )
    )["items"]
    assert {(i["email"], i["name"], tuple(i["roles"])) for i in listed} == {
        (first, "Anna Berg", ("viewer",)),
        (second, "Ben Cole", ("viewer",)),
    }
    wait_for_mail(stack, second, "invitation")


def test_a_platform_admin_changes_a_mail_text_and_puts_it_back(
    world: World, stack: Stack, browser: Browser, console_url: str
) -> None:
    admin_api, admin_user = platform_admin(world)
    _, customer = customer_admin(world, world.org_a)
    form = "#template-invitation_expired"
    try:
        with person(browser, console_url) as page:
            sign_in(page, admin_user["email"])
            page.get_by_role("link", name="Mail templates").click()
            expect(page.locator("form[data-key]")).to_have_count(
                len(ok(admin_api.get("identity", "/v1/mail-templates"))["items"])
            )
            page.get_by_label("Subject of invitation_expired").fill("Too late for $org_name")
            page.get_by_label("Body of invitation_expired").fill(
                "Hello $inviter_name,\n$email came back after $expired_at."
            )
            page.get_by_role("button", name="Save invitation_expired").click()
            expect(page.get_by_role("status")).to_contain_text("invitation_expired mail is saved")
            expect(page.locator(f"{form} .customised")).to_have_text("changed")
            stored = {
                t["key"]: t for t in ok(admin_api.get("identity", "/v1/mail-templates"))["items"]
            }["invitation_expired"]
            assert stored["subject"] == "Too late for $org_name"
            assert stored["body"] == "Hello $inviter_name,\n$email came back after $expired_at."
            shot(page, "mail-templates")

            page.get_by_role("button", name="Built-in text for invitation_expired").click()
            expect(page.get_by_role("status")).to_contain_text("its built-in text again")
            expect(page.locator(f"{form} .customised")).to_have_text("built-in text")
            expect(page.get_by_label("Subject of invitation_expired")).to_have_value(
                "$email tried to accept an expired invitation to $org_name"
            )

        # Anyone else gets identity's refusal, and no link to the page.
        with person(browser, console_url) as other:
            sign_in(other, customer["email"])
            expect(other.get_by_role("link", name="Mail templates")).to_have_count(0)
            answer = other.goto("/mail-templates")
            assert answer is not None and answer.status == 403
            expect(other.locator("form[data-key]")).to_have_count(0)
    finally:
        ok(admin_api.put("identity", "/v1/mail-templates/invitation_expired", json={}))
