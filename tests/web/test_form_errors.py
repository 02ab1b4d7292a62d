"""A refused console (or account) form comes back on its page with the error beside the
field it is about (``aria-invalid`` and ``aria-describedby`` pointing at it) and what was
typed kept, secrets excepted; one test per form that used to show its error only in the
banner or lose the input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenants.requests import rules
from tests.conftest import OrgHandle, make_group, make_member, make_product
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    described_by,
    set_local_sign_in,
    set_password,
)

WHY = "Investigating a reported leak of the quarterly figures (case 77)."


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def person(org: OrgHandle, name: str, *roles: str) -> dict[str, Any]:
    made = await make_member(org, name=name, roles=list(roles or ["member"]))
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def signed_in(browser: WebClient, org: OrgHandle, who: dict[str, Any]) -> str:
    return await browser.signed_in(org.slug, who["email"])


async def refused(
    browser: WebClient, action: str, form: dict[str, Any], page: str
) -> str:
    """Send the form from ``page``; it is refused back to ``page``, shown with its errors."""
    response = await browser.http.post(
        action, data=form, headers={"referer": f"http://tenantry.test{page}"}
    )
    assert response.status_code == 303, response.text[:1000]
    assert response.headers["location"] == page
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert 'class="banner flash error-banner" role="alert"' in shown.text
    return shown.text


def error_beside(page: str, field: str, *, error_id: str | None = None) -> str:
    """The field's error paragraph, checking the field points at it."""
    error_id = error_id or f"{field}-error"
    assert described_by(page, error_id), field
    match = re.search(rf'<p class="field-error" id="{re.escape(error_id)}">([^<]+)</p>', page)
    assert match, f"no error beside {field}"
    return match.group(1)


async def test_the_data_access_request_keeps_what_was_typed_and_names_the_justification(
    app: Any, local_org: OrgHandle
) -> None:
    ada = await person(local_org, "Ada Admin", "admin")
    mia = await person(local_org, "Mia Member")
    product = await make_product(local_org, name="Files")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, ada)
        page = await refused(
            browser,
            "/console/data-access/new",
            {"csrf": csrf, "subject": "member", "member_id": mia["id"],
             "member_id_q": "Mia Mem",
             "categories": ["files", "communications"], "product_ids": [product["id"]],
             "justification": "too short", "case_reference": "CASE-77", "duration_hours": "8"},
            "/console/data-access/new",
        )
    assert "at least" in error_beside(page, "justification")
    # The member chosen with the picker is still chosen, under what was typed.
    assert re.search(rf'name="member_id" value="{mia["id"]}" checked', page)
    # ... and named as the person, not as the text that found them.
    assert re.search(rf'value="{mia["id"]}" checked> Mia Member \({re.escape(mia["email"])}\)', page)
    assert 'value="Mia Mem"' in page and 'value="CASE-77"' in page
    assert ">too short</textarea>" in page and 'value="8"' in page
    for value in ("files", "communications", product["id"]):
        assert re.search(rf'value="{value}" checked', page), value
    # "All products" was not ticked, so it comes back unticked.
    assert not re.search(r'name="all_products" value="1" checked', page)


async def test_a_data_access_request_missing_everything_names_every_field_at_once(
    app: Any, local_org: OrgHandle
) -> None:
    ada = await person(local_org, "Ada Admin", "admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, ada)
        page = await refused(
            browser,
            "/console/data-access/new",
            {"csrf": csrf, "subject": "member", "member_email": "", "justification": "",
             "duration_hours": "many"},
            "/console/data-access/new",
        )
    assert "choose one" in error_beside(page, "member_id")
    # The picker's search field names its hint and its error in one aria-describedby (a
    # second attribute for the error was dropped by the browser: the error went unread).
    assert described_by(page, "member_id-error") == ["access-member-q"]
    assert described_by(page, "access-member-hint") == ["access-member-q"]
    assert "whole number" in error_beside(page, "duration_hours")
    assert "at least" in error_beside(page, "justification")
    # A group of checkboxes: its fieldset points at the error.
    assert '<fieldset aria-describedby="categories-error">' in page
    assert re.search(r'id="categories-error">Categories: name at least one category<', page)


async def test_a_privacy_request_answer_and_extension_keep_their_text(
    app: Any, local_org: OrgHandle
) -> None:
    mia = await person(local_org, "Mia Member")
    olivia = await person(local_org, "Olivia Officer", "privacy_officer")
    async with asgi_client(app) as member, asgi_client(app) as officer:
        csrf = await signed_in(member, local_org, mia)
        page = await refused(
            member, "/account/privacy-requests",
            {"csrf": csrf, "kind": "access", "message": ""}, "/account/privacy-requests",
        )
        assert error_beside(page, "message")
        assert re.search(r'value="access" required checked', page)
        sent = await member.post("/account/privacy-requests",
                                 {"csrf": csrf, "kind": "access", "message": "A copy, please."})
        request_page = sent.headers["location"].replace("/account/", "/console/")

        officer_csrf = await signed_in(officer, local_org, olivia)
        page = await refused(
            officer, f"{request_page}/extend",
            {"csrf": officer_csrf, "months": "2", "reason": ""}, request_page,
        )
        assert error_beside(page, "reason")
        assert '<option value="2" selected>' in page
        page = await refused(
            officer, f"{request_page}/close",
            {"csrf": officer_csrf, "outcome": "answer", "answer": ""}, request_page,
        )
        assert error_beside(page, "answer")
        page = await refused(
            officer, "/console/privacy-requests/settings",
            {"csrf": officer_csrf, "reminder_days": "soon", "export_collect_hours": "48",
             "export_link_days": "9"},
            "/console/privacy-requests",
        )
        assert error_beside(page, "reminder_days")
        assert 'value="soon"' in page and 'value="9"' in page and "<details class=\"card\" open>" in page


async def test_the_identity_provider_settings_keep_input_but_never_the_secret(
    app: Any, local_org: OrgHandle
) -> None:
    owner = await person(local_org, "Olga Owner", "owner")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, owner)
        page = await refused(
            browser, "/console/settings/sso",
            {"csrf": csrf, "issuer": "not a url", "client_id": "tenantry-web",
             "client_secret": "s3cret-value-0123456789", "scopes": "openid email",
             "groups_claim": "groups", "jit_provisioning": "on"},
            "/console/settings",
        )
    assert error_beside(page, "issuer")
    assert 'value="not a url"' in page and 'value="tenantry-web"' in page
    assert 'value="groups"' in page and re.search(r'name="jit_provisioning" checked', page)
    assert "s3cret-value" not in page
    # "enabled" was not sent: it comes back unticked.
    assert not re.search(r'name="enabled" checked', page)


async def test_the_data_access_policy_and_the_transmitter_name_their_fields(
    app: Any, local_org: OrgHandle
) -> None:
    owner = await person(local_org, "Olga Owner", "owner", "privacy_officer")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, owner)
        page = await refused(
            browser, "/console/data-access/policy",
            {"csrf": csrf, "max_duration_hours": "24", "emergency_max_hours": "99999",
             "max_disclosure_delay_days": "3", "emergency_allowed": "1"},
            "/console/data-access/policy",
        )
        assert error_beside(page, "emergency_max_hours")
        assert 'value="99999"' in page and 'value="3"' in page
        page = await refused(
            browser, "/console/identity/transmitter",
            {"csrf": csrf, "issuer": "https://ssf.example.org",
             "jwks_uri": "https://ssf.example.org/jwks", "audience": ""},
            "/console/identity",
        )
        assert error_beside(page, "audience")
        assert 'value="https://ssf.example.org/jwks"' in page


async def test_forms_sharing_a_field_name_show_the_error_only_in_the_form_sent(
    app: Any, local_org: OrgHandle
) -> None:
    ada = await person(local_org, "Ada Admin", "admin")
    pia = await person(local_org, "Pia Privacy", "privacy_officer")
    mia = await person(local_org, "Mia Member")
    async with asgi_client(app) as admin, asgi_client(app) as officer:
        csrf = await signed_in(admin, local_org, ada)
        made = await admin.post("/console/data-access/new", {
            "csrf": csrf, "subject": "member", "member_email": mia["email"],
            "categories": "files", "all_products": "1", "justification": WHY,
            "duration_hours": "8"})
        grant_page = made.headers["location"]
        officer_csrf = await signed_in(officer, local_org, pia)
        page = await refused(
            officer, f"{grant_page}/deny",
            {"csrf": officer_csrf, "form": "deny", "reason": "   "}, grant_page,
        )
    assert error_beside(page, "reason", error_id="deny-reason-error")
    assert page.count('class="field-error"') == 1


async def test_the_member_page_forms_name_their_field_and_keep_the_reason(
    app: Any, local_org: OrgHandle
) -> None:
    owner = await person(local_org, "Olga Owner", "owner")
    mia = await person(local_org, "Mia Member")
    await make_group(local_org)
    page_of_mia = f"/console/members/{mia['id']}"
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, owner)
        page = await refused(
            browser, f"{page_of_mia}/transition",
            {"csrf": csrf, "action": "explode", "reason": "typed before the mistake"},
            page_of_mia,
        )
        assert "is not a lifecycle action" in page and 'id="action-error"' in page
        assert 'value="typed before the mistake"' in page
        page = await refused(
            browser, f"{page_of_mia}/groups",
            {"csrf": csrf, "group_id": "not-a-group", "op": "add"}, page_of_mia,
        )
        assert error_beside(page, "group_id")


async def test_an_error_beside_a_field_names_the_field_then_the_reason(
    app: Any, local_org: OrgHandle
) -> None:
    """"member choose one" ran the field's name into the reason; it reads "Member: choose
    one" (a screen reader reads it after the field's own label, so the name stays)."""
    ada = await person(local_org, "Ada Admin", "admin")
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, local_org, ada)
        page = await refused(
            browser,
            "/console/data-access/new",
            {"csrf": csrf, "subject": "member", "categories": ["files"], "all_products": "1",
             "justification": "Investigating a reported leak of files.", "duration_hours": "8"},
            "/console/data-access/new",
        )
    assert error_beside(page, "member_id") == "Member: choose one"


async def test_an_overdue_privacy_request_refuses_an_extension_beside_the_months(
    app: Any, local_org: OrgHandle, owner_conn: Any
) -> None:
    """GDPR art. 12(3): an extension is told within one month of receipt; once the request
    is overdue the console says so beside the field and changes nothing."""
    mia = await person(local_org, "Mia Member")
    olivia = await person(local_org, "Olivia Officer", "privacy_officer")
    sent = await local_org.post(
        "/v1/privacy-requests",
        {"member_id": mia["id"], "kind": "access", "message": "A copy, please."},
    )
    request_id = sent.json()["id"]
    received_at = datetime.now(UTC) - timedelta(days=70)
    await owner_conn.execute(
        "UPDATE privacy_requests SET received_at = $2, due_on = $3 WHERE id = $1::uuid",
        request_id, received_at, rules.due_date(received_at.date()),
    )
    request_page = f"/console/privacy-requests/{request_id}"
    async with asgi_client(app) as officer:
        csrf = await signed_in(officer, local_org, olivia)
        shown = (await officer.get(request_page)).text
        assert "Too late to extend" in shown and 'name="months"' not in shown
        page = await refused(
            officer, f"{request_page}/extend",
            {"csrf": csrf, "months": "1", "reason": "complex request"}, request_page,
        )
    assert "too late to extend" in error_beside(page, "months")
    due_on = await owner_conn.fetchval(
        "SELECT due_on FROM privacy_requests WHERE id = $1::uuid", request_id
    )
    assert due_on == rules.due_date(received_at.date())
