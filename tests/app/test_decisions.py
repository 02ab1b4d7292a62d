"""The decision API: effective settings with provenance, ETags, batches, choices, locks,
and invalidation when anything that shapes an answer changes."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import OrgHandle, make_group, make_member, make_product, make_unit, row_counts
from tests.support.api_schema import assert_problem, error_fields

ADS = "improvement.use_data"


async def settings_of(org: OrgHandle, member_id: str, **headers: str) -> Any:
    return await org.client.get(
        f"/v1/members/{member_id}/settings", headers={**org.headers, **headers}
    )


async def set_rule(
    org: OrgHandle,
    target_kind: str,
    target_id: str,
    value: Any,
    *,
    enforced: bool = False,
    setting: str = ADS,
    reason: str = "because",
    **extra: Any,
) -> Any:
    response = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": target_kind,
            "target_id": target_id,
            "setting": setting,
            "value": value,
            "enforced": enforced,
            "reason": reason,
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_member_gets_every_setting_with_its_source(org: OrgHandle) -> None:
    member = await make_member(org)
    body = (await settings_of(org, member["id"])).json()
    assert body["member_id"] == member["id"] and body["policy_version"] == 0
    assert body["catalogue_version"]
    ads = body["settings"][ADS]
    assert ads["value"] is False and ads["locked"] is False and ads["source"]["kind"] == "default"
    assert len(body["settings"]) >= 16


async def test_a_lock_on_a_parent_unit_shows_with_its_reason_and_hides_the_members_choice(
    org: OrgHandle,
) -> None:
    parent = await make_unit(org)
    child = await make_unit(org, parent=parent["id"])
    member = await make_member(org, unit=child["id"])
    chosen = await org.post(
        f"/v1/members/{member['id']}/choices", json={"setting": ADS, "value": True}
    )
    assert chosen.status_code == 200 and chosen.json()["source"]["kind"] == "member"
    rule = await set_rule(
        org, "unit", parent["id"], False, enforced=True, reason="No ads at school"
    )
    ads = (await settings_of(org, member["id"])).json()["settings"][ADS]
    assert ads == {
        "value": False,
        "locked": True,
        "reason": "No ads at school",
        "hidden_choice": True,
        "source": {
            "kind": "rule",
            "rule_id": rule["id"],
            "target_kind": "unit",
            "target_id": parent["id"],
        },
        "upcoming": [],
    }
    refused = await org.post(
        f"/v1/members/{member['id']}/choices", json={"setting": ADS, "value": True}
    )
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/setting_locked"
    assert (await org.delete(f"/v1/policy/rules/{rule['id']}")).status_code == 204
    back = (await settings_of(org, member["id"])).json()["settings"][ADS]
    assert back["value"] is True and back["source"]["kind"] == "member"


async def test_a_group_rule_beats_a_unit_rule(org: OrgHandle) -> None:
    member = await make_member(org)
    group = await make_group(org, priority=5)
    await org.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    await set_rule(org, "unit", str(org.root_unit_id), False, setting="sharing.obtain_from_third_parties")
    await set_rule(org, "group", group["id"], True, setting="sharing.obtain_from_third_parties")
    analytics = (await settings_of(org, member["id"])).json()["settings"]["sharing.obtain_from_third_parties"]
    assert analytics["value"] is True and analytics["source"]["target_kind"] == "group"


async def test_etag_gives_304_until_something_changes(org: OrgHandle) -> None:
    member = await make_member(org)
    first = await settings_of(org, member["id"])
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "private, no-cache"
    again = await settings_of(org, member["id"], **{"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
    # As a cache or a proxy sends it: weakened, in a list, or "*" (any version).
    for held in (f"W/{etag}", f'"older", {etag}', "*"):
        assert (await settings_of(org, member["id"], **{"If-None-Match": held})).status_code == 304
    await set_rule(org, "unit", str(org.root_unit_id), True)
    changed = await settings_of(org, member["id"], **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["policy_version"] == 1


async def test_moving_a_member_or_joining_a_group_changes_the_answer_at_once(
    org: OrgHandle,
) -> None:
    unit = await make_unit(org)
    member = await make_member(org)
    await set_rule(org, "unit", unit["id"], True)
    assert (await settings_of(org, member["id"])).json()["settings"][ADS]["value"] is False
    await org.post(f"/v1/members/{member['id']}/move", json={"unit_id": unit["id"]})
    assert (await settings_of(org, member["id"])).json()["settings"][ADS]["value"] is True
    group = await make_group(org)
    await set_rule(org, "group", group["id"], False)
    await org.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    assert (await settings_of(org, member["id"])).json()["settings"][ADS]["value"] is False


async def test_members_are_found_by_email_or_identity_provider_subject(org: OrgHandle) -> None:
    member = await make_member(org, idp_subject="sub-123")
    by_email = await org.get("/v1/effective-settings", params={"email": member["email"].upper()})
    by_subject = await org.get("/v1/effective-settings", params={"idp_subject": "sub-123"})
    assert by_email.json()["member_id"] == by_subject.json()["member_id"] == member["id"]
    both = await org.get(
        "/v1/effective-settings", params={"email": member["email"], "idp_subject": "x"}
    )
    assert both.status_code == 422
    assert (
        await org.get("/v1/effective-settings", params={"email": "nobody@x.example"})
    ).status_code == 404


async def test_a_batch_answers_many_members_and_names_the_unknown(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    alpha, bravo = two_orgs
    ours = [await make_member(alpha) for _ in range(3)]
    theirs = await make_member(bravo)
    ids = [m["id"] for m in ours] + [theirs["id"]]
    body = (await alpha.post("/v1/effective-settings/batch", json={"member_ids": ids})).json()
    assert [i["member_id"] for i in body["items"]] == [m["id"] for m in ours]
    assert body["not_found"] == [theirs["id"]]


async def test_another_organisations_member_is_not_found(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    alpha, bravo = two_orgs
    theirs = await make_member(bravo)
    await settings_of(bravo, theirs["id"])  # cached for bravo; must not leak to alpha
    for path in (f"/v1/members/{theirs['id']}/settings", f"/v1/members/{theirs['id']}/notice"):
        response = await alpha.get(path)
        assert response.status_code == 404, path


async def test_invalid_rules_are_refused_and_change_nothing(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    before = await row_counts(owner_conn)
    for body, field in (
        ({"setting": ADS, "value": "yes"}, "value"),
        ({"setting": "no.such.setting", "value": True}, "setting"),
        ({"setting": "diagnostics.level", "value": "everything"}, "value"),
        # Consent the member cannot withdraw is none (GDPR Art. 7(3)): locked on, refused.
        ({"setting": "advertising.personalised_ads", "value": True}, "value"),
        ({"setting": "cookies.analytics", "value": True}, "value"),
    ):
        response = await org.put(
            "/v1/policy/rules",
            json={
                "target_kind": "unit",
                "target_id": str(org.root_unit_id),
                "enforced": True,
                **body,
            },
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    missing = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "group",
            "target_id": str(org.root_unit_id),
            "setting": ADS,
            "value": True,
        },
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "target_id"
    assert await row_counts(owner_conn) == before


async def test_switching_off_a_required_setting_needs_confirmation_with_its_impact(
    org: OrgHandle,
) -> None:
    await make_member(org)
    await make_product(org, name="Mail")
    body = {
        "target_kind": "unit",
        "target_id": str(org.root_unit_id),
        "setting": "cookies.necessary",
        "value": False,
        "enforced": True,
    }
    refused = await org.put("/v1/policy/rules", json=body)
    assert (
        refused.status_code == 409 and refused.json()["type"] == "/problems/confirmation_required"
    )
    assert (
        refused.json()["impact"]["members"] == 1 and "Mail" in refused.json()["impact"]["products"]
    )
    assert (await org.put("/v1/policy/rules", json={**body, "confirm": True})).status_code == 200


async def test_preview_counts_changes_and_overridden_choices_without_writing(
    org: OrgHandle,
) -> None:
    unit = await make_unit(org, name="Sales")
    a = await make_member(org, unit=unit["id"])
    await make_member(org, unit=unit["id"])
    await org.post(f"/v1/members/{a['id']}/choices", json={"setting": ADS, "value": True})
    preview = await org.post(
        "/v1/policy/preview",
        json={
            "target_kind": "unit",
            "target_id": unit["id"],
            "setting": ADS,
            "value": True,
            "enforced": True,
        },
    )
    impact = preview.json()
    assert impact["members_in_scope"] == 2 and impact["value_changes"] == 1
    assert impact["choices_overridden"] == 0 and impact["locked_after"] == 2
    off = (
        await org.post(
            "/v1/policy/preview",
            json={
                "target_kind": "unit",
                "target_id": unit["id"],
                "setting": ADS,
                "value": False,
                "enforced": True,
            },
        )
    ).json()
    assert off["choices_overridden"] == 1 and off["by_unit"] == [["Sales", 1]]
    assert (await org.get("/v1/policy/rules")).json()["items"] == []


async def test_history_diff_and_rollback(org: OrgHandle) -> None:
    first = await set_rule(org, "unit", str(org.root_unit_id), True)
    await set_rule(org, "unit", str(org.root_unit_id), False, enforced=True)
    versions = (await org.get("/v1/policy/versions")).json()["items"]
    assert [v["number"] for v in versions] == [2, 1]
    diff = (await org.get("/v1/policy/diff", params={"from": 1, "to": 2})).json()["changes"]
    assert len(diff) == 1 and diff[0]["kind"] == "changed"
    assert diff[0]["before"]["value"] is True and diff[0]["after"]["enforced"] is True
    rolled = await org.post("/v1/policy/rollback", json={"version": 1})
    assert rolled.json()["policy_version"] == 3
    rules = (await org.get("/v1/policy/rules")).json()["items"]
    assert [(r["value"], r["enforced"]) for r in rules] == [(True, False)] and rules[0][
        "id"
    ] != first["id"]
    events = (await org.get("/v1/audit-events", params={"action": "policy.rolled_back"})).json()[
        "items"
    ]
    assert len(events) == 1
    # The same restore again (a form sent twice, a page shown before): nothing to do, and
    # no empty version made.
    again = await org.post("/v1/policy/rollback", json={"version": 1})
    problem = assert_problem(again, 409)
    assert error_fields(problem) == {"version": "matches the rules in force"}
    assert [v["number"] for v in (await org.get("/v1/policy/versions")).json()["items"]] == [
        3,
        2,
        1,
    ]


async def test_products_declare_their_own_settings_and_clashes_are_refused(org: OrgHandle) -> None:
    product = await make_product(org, key="chat")
    declaration = {
        "key": "chat.read_receipts",
        "type": "bool",
        "default": True,
        "title": "Read receipts",
        "description": "Others see when you have read a message.",
        "purpose": "social_features",
    }
    declared = await org.put(
        "/v1/settings/declared", json={"product_id": product["id"], "settings": [declaration]}
    )
    assert declared.status_code == 200
    assert "chat.read_receipts" in {s["key"] for s in declared.json()["settings"]}
    clash = await org.put(
        "/v1/settings/declared",
        json={
            "product_id": product["id"],
            "settings": [{**declaration, "key": "cookies.analytics"}],
        },
    )
    assert clash.status_code == 409
    member = await make_member(org)
    assert (await settings_of(org, member["id"])).json()["settings"]["chat.read_receipts"][
        "value"
    ] is True


async def test_an_integer_beyond_what_json_holds_exactly_is_refused_naming_the_field(
    org: OrgHandle,
) -> None:
    """2**70 as a declared minimum once reached the JSON encoder of the stored definition
    (64 bits at most): a 500. Integers are bounded by I-JSON's +-(2**53 - 1) everywhere a
    setting value or bound is taken."""
    product = await make_product(org, key="meter")
    declaration = {
        "key": "meter.cap",
        "type": "int",
        "default": 1,
        "title": "Cap",
        "minimum": 0,
        "maximum": 10,
    }
    too_big = 2**53
    for field in ("minimum", "maximum", "default"):
        for value in (too_big, -too_big, -(2**70)):
            refused = await org.put(
                "/v1/settings/declared",
                json={"product_id": product["id"], "settings": [{**declaration, field: value}]},
            )
            assert refused.status_code == 422, refused.text
            fields = [e["field"] for e in refused.json()["errors"]]
            assert all(f.startswith(f"settings[0].{field}") for f in fields), fields
    catalogue = (await org.get("/v1/settings/catalogue")).json()["settings"]
    assert "meter.cap" not in {s["key"] for s in catalogue}
    edge = {**declaration, "minimum": -(2**53 - 1), "maximum": 2**53 - 1}
    declared = await org.put(
        "/v1/settings/declared", json={"product_id": product["id"], "settings": [edge]}
    )
    assert declared.status_code == 200, declared.text
    rule = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "unit",
            "target_id": str(org.root_unit_id),
            "setting": "meter.cap",
            "value": 2**70,
            "enforced": True,
            "reason": "too big",
        },
    )
    assert rule.status_code == 422, rule.text


async def test_the_notice_names_the_organisation_and_its_locks(org: OrgHandle) -> None:
    member = await make_member(org)
    await set_rule(org, "unit", str(org.root_unit_id), False, enforced=True, reason="Policy 7 <b>")
    notice = (await org.get(f"/v1/members/{member['id']}/notice")).json()
    assert notice["organisation"] == org.slug.title() and len(notice["notice"]) == 5
    assert notice["locked"] == [
        {"setting": ADS, "title": "Use of data to improve products", "value": False, "reason": "Policy 7 <b>"}
    ]
    fragment = await org.get(f"/v1/members/{member['id']}/notice.html")
    assert fragment.headers["content-type"].startswith("text/html")
    assert "This account is managed by" in fragment.text and "Policy 7 &lt;b&gt;" in fragment.text
