"""Console forms and pages under input no browser of ours sends: digits of other scripts,
numbers beyond any column, the last day there is, text that is not UTF-8, forms larger
than any of ours, names that are not Latin-1 in a download, a sign-out from elsewhere.
Each is refused naming its field, or read as no input at all; none is a 500 and none
changes anything."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import OrgHandle, make_group, make_member
from tests.web.flows import WebClient, asgi_client, set_local_sign_in, text_of
from tests.web.test_form_errors import error_beside, person, refused

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def owner(org: OrgHandle) -> dict[str, Any]:
    await set_local_sign_in(org.id, True)
    return await person(org, "Olive Owner", "owner")


async def group_names(org: OrgHandle) -> list[str]:
    listed = await org.get("/v1/groups")
    assert listed.status_code == 200
    return [g["name"] for g in listed.json()["items"]]


async def raw_post(browser: WebClient, action: str, body: str, page: str) -> Any:
    return await browser.http.post(
        action,
        content=body.encode("ascii"),
        headers={**FORM, "referer": f"http://tenantry.test{page}"},
    )


@pytest.mark.parametrize(
    "path",
    [
        "/console/members?size=%C2%B2",
        "/console/groups?size=%D9%A3",
        "/console/api-tokens?size=%EF%BC%91",
        "/console/audit?size=%C2%B2&before=%C2%B2&trail=%C2%B2",
        "/console/data-access/log?before=%C2%B2",
        "/console/audit?before=99999999999999999999999",
        "/console/audit?until=9999-12-31",
        "/console/audit/export?until=9999-12-31&format=csv",
    ],
)
async def test_a_page_reads_other_digits_and_out_of_range_numbers_as_no_number(
    app: Any, org: OrgHandle, owner: dict[str, Any], path: str
) -> None:
    async with asgi_client(app) as browser:
        await browser.signed_in(org.slug, owner["email"])
        response = await browser.http.get(path)
    assert response.status_code == 200, response.text[:500]


@pytest.mark.parametrize("digits", ["\u00b2", "\u0663", "\uff11", "1_0", "+3", "999999999999"])
async def test_a_number_in_other_digits_is_refused_beside_its_field(
    app: Any, org: OrgHandle, owner: dict[str, Any], digits: str
) -> None:
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        page = await refused(
            browser,
            "/console/groups",
            {"csrf": csrf, "name": "Digits", "priority": digits},
            "/console/groups",
        )
        # Too many digits for the column is still a number, out of range; anything else is
        # no number at all.
        expected = "is not in -1000..1000" if digits.isascii() and digits.isdigit() else (
            "not a number"
        )
        assert expected in error_beside(page, "priority")
        page = await refused(
            browser,
            "/console/settings/policy-notice",
            {"csrf": csrf, "form": "policy-notice", "policy_notice_days": digits},
            "/console/settings",
        )
        assert "0 to 90" in error_beside(
            page, "policy_notice_days", error_id="policy-notice-policy_notice_days-error"
        )
        answered = await browser.http.post(
            "/console/privacy-requests/settings",
            data={
                "csrf": csrf,
                "reminder_days": digits,
                "export_collect_hours": "72",
                "export_link_days": "7",
            },
            headers={"referer": "http://tenantry.test/console/privacy-requests"},
        )
        assert answered.status_code == 303, answered.text[:500]
    assert "Digits" not in await group_names(org)


async def test_a_rollback_beyond_the_history_is_refused_naming_the_version(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        for version in ("2147483648", "12345", "\u0663"):
            page = await refused(
                browser,
                "/console/policies/rollback",
                {"csrf": csrf, "version": version},
                "/console/policies/history",
            )
            assert "Version" in page and "is not a version of the rules" in page


@pytest.mark.parametrize("escaped", ["%FF", "%ED%A0%80", "ab%C3", "%C0%AF"])
async def test_text_that_is_not_utf8_is_refused_naming_its_field_not_saved_as_a_stand_in(
    app: Any, org: OrgHandle, owner: dict[str, Any], escaped: str
) -> None:
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        sent = await raw_post(
            browser,
            "/console/groups",
            f"csrf={csrf}&name={escaped}&priority=1",
            "/console/groups",
        )
        assert sent.status_code == 303 and sent.headers["location"] == "/console/groups"
        page = (await browser.get("/console/groups")).text
        assert "is not UTF-8 text" in error_beside(page, "name")
    assert await group_names(org) == []


async def test_a_form_larger_than_any_of_ours_is_refused_whole_and_changes_nothing(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        huge = await raw_post(
            browser,
            "/console/groups",
            f"csrf={csrf}&name=Big&description=" + "x" * (1024 * 1024 + 1),
            "/console/groups",
        )
        many = await raw_post(
            browser,
            "/console/groups",
            f"csrf={csrf}&name=Many&" + "&".join(f"f{i}=1" for i in range(1001)),
            "/console/groups",
        )
        multipart = await browser.http.post(
            "/console/groups",
            files={"attached": ("a.txt", b"an upload makes the form multipart")},
            data={"csrf": csrf, "name": "Upload", "description": "x" * (1024 * 1024 + 1)},
        )
        small = await browser.http.post(  # a name in Latin-1 bytes, not UTF-8
            "/console/groups", data={"csrf": csrf}, files={"name": (None, b"Caf\xe9")}
        )
    for response in (huge, many):
        assert response.status_code == 413, response.text[:300]
        assert "Form too large" in response.text and "Nothing was changed" in response.text
    # No form here uploads a file: a multipart body is refused whole, whatever its size
    # (Starlette would read its text as Latin-1 where it is not UTF-8).
    assert multipart.status_code == 415, multipart.text[:300]
    assert "Form not readable" in multipart.text
    assert "is sent as multipart/form-data, not application/x-www-form-urlencoded" in (
        multipart.text
    )
    assert small.status_code == 415, small.text[:300]
    assert await group_names(org) == []


async def test_an_export_named_after_a_search_in_any_script_downloads(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    await make_member(org, name="\u03a9mega \u00d8ster", email="omega@example.org")
    async with asgi_client(app) as browser:
        await browser.signed_in(org.slug, owner["email"])
        for q in ("\u03a9mega", "\U0001f600", 'a"b\\c/d'):
            response = await browser.http.get("/console/members/export.csv", params={"q": q})
            assert response.status_code == 200, response.text[:300]
            disposition = response.headers["content-disposition"]
            assert disposition.startswith('attachment; filename="members-')
            assert disposition.isascii() and "\\" not in disposition
        greek = await browser.http.get("/console/members/export.csv", params={"q": "\u03a9mega"})
        assert (
            f"filename*=UTF-8''members-{quote(chr(0x3A9) + 'mega', safe='')}"
            in (greek.headers["content-disposition"])
        )
        assert "omega@example.org" in greek.text


async def test_a_sign_out_not_sent_from_the_session_says_so_and_ends_nothing(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        forged = await browser.http.post("/logout", data={"csrf": "forged"})
        assert forged.status_code == 403
        assert "Not signed out" in forged.text and "still signed in" in forged.text
        assert (await browser.http.get("/console")).status_code == 200
        done = await browser.http.post("/logout", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == "/login?signed_out=1"
        assert (await browser.http.get("/console")).status_code in (302, 303)


async def test_an_existing_group_keeps_its_name_when_a_rename_is_not_utf8(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    group = await make_group(org, name="Kept")
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        page = f"/console/groups/{group['id']}"
        sent = await raw_post(browser, page, f"csrf={csrf}&name=%FF&priority=0", page)
        assert sent.status_code == 303
    assert await group_names(org) == ["Kept"]


async def test_a_missing_console_page_is_a_page_in_a_browser_and_a_problem_for_a_script(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        await browser.signed_in(org.slug, owner["email"])
        page = await browser.http.get("/console/nope", headers={"accept": "text/html"})
        script = await browser.http.get("/console/nope", headers={"accept": "application/json"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and 'href="/console"' in page.text
    assert script.status_code == 404
    assert script.headers["content-type"].startswith("application/problem+json")


async def test_an_operation_no_button_sends_is_refused_naming_op(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    group = await make_group(org, name="Ops")
    member = await make_member(org, name="Opal")
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        for action, form in (
            (f"/console/groups/{group['id']}/members", {"member_id": member["id"]}),
            (f"/console/members/{member['id']}/groups", {"group_id": group["id"]}),
        ):
            sent = await browser.http.post(
                action,
                data={"csrf": csrf, "op": "' OR 1=1;--", **form},
                headers={"referer": f"http://tenantry.test/console/groups/{group['id']}"},
            )
            assert sent.status_code == 303
            shown = (await browser.get(sent.headers["location"])).text
            assert "this form cannot do that" in shown and "is not one of add, remove" in shown
    listed = await org.get(f"/v1/groups/{group['id']}/members")
    assert listed.json()["items"] == []


async def test_a_refused_form_without_a_referer_lands_on_a_page_that_opens(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        refused = await browser.http.post(
            "/console/members/bulk",
            data={
                "csrf": csrf,
                "action": "suspend",
                f"member_{uuid.uuid4()}": "1",
                "confirmed": "1",
            },
        )
        assert refused.status_code == 303 and refused.headers["location"] == "/console/members"
        assert (await browser.get("/console/members")).status_code == 200


async def test_signing_out_a_member_without_sessions_asks_nothing(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    quiet = await make_member(org, name="Quinn Quiet")
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        sent = await browser.http.post(
            f"/console/members/{quiet['id']}/sign-out", data={"csrf": csrf}
        )
        assert sent.status_code == 303
        shown = (await browser.get(sent.headers["location"])).text
        assert "Quinn Quiet has no live session: nothing to end." in shown


async def test_the_password_field_waits_for_typing_once_the_email_is_known(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        known = await browser.http.get(f"/login/{org.slug}", params={"email": owner["email"]})
        fresh = await browser.http.get(f"/login/{org.slug}")
    assert 'autocomplete="current-password" required autofocus>' in known.text
    assert 'autocomplete="username" value="" required autofocus>' in fresh.text


async def test_an_id_of_nothing_in_a_form_is_refused_naming_its_field(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    group = await make_group(org, name="Named")
    member = await make_member(org, name="Nadia")
    nothing = str(uuid.uuid4())
    async with asgi_client(app) as browser:
        csrf = await browser.signed_in(org.slug, owner["email"])
        for action, field, label in (
            (f"/console/groups/{group['id']}/members", "member_id", "Member"),
            (f"/console/members/{member['id']}/groups", "group_id", "Group"),
            (f"/console/members/{member['id']}/products", "product_id", "Product"),
        ):
            sent = await browser.http.post(
                action,
                data={
                    "csrf": csrf,
                    "op": "add" if "product" not in field else "assign",
                    field: nothing,
                },
                headers={"referer": f"http://tenantry.test/console/members/{member['id']}"},
            )
            assert sent.status_code == 303, (action, sent.text[:300])
            shown = text_of((await browser.get(sent.headers["location"])).text)
            assert f"{label}: no {label.lower()} with id {nothing}" in shown, (action, shown[:600])


async def test_a_page_refusing_its_address_offers_a_way_on(
    app: Any, org: OrgHandle, owner: dict[str, Any]
) -> None:
    async with asgi_client(app) as browser:
        await browser.signed_in(org.slug, owner["email"])
        cursor = await browser.http.get("/console/members", params={"cursor": "forged"})
        missing = await browser.http.get(f"/console/members/{uuid.uuid4()}")
    assert cursor.status_code == 400 and 'href="/console/members"' in cursor.text
    assert "Back to the first page" in cursor.text
    assert missing.status_code == 404 and 'href="/console/members">Back</a>' in missing.text
