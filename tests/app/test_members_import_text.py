"""The members import (CSV) under the text policy and address form the JSON API applies:
what a line writes is what the API would write, and it matches what the API wrote."""

from __future__ import annotations

import uuid

from tests.conftest import OrgHandle, make_member


async def test_hostile_import_cells_are_refused_on_their_line_and_addresses_match_the_api_s(
    org: OrgHandle,
) -> None:
    """From an outside fuzzer: a NUL in any cell made a 500; a decomposed é in an address
    made a second member for the address the API then stored composed."""
    headers = {"content-type": "text/csv", "authorization": f"Bearer {org.token}"}
    hostile = (
        "email,name,unit,manager_email\n"
        f"n1@{org.slug}.example,N\x00One,,\n"
        f"n2@{org.slug}.example,N Two,UNI\x00QUE,\n"
        f"n3\x00@{org.slug}.example,N Three,,\n"
        f"n4@{org.slug}.example,N Four,,boss\x00@{org.slug}.example\n"
        f"n5@{org.slug}.example,N\u202eFive,,\n"
    )
    for dry_run in ("true", "false"):
        answer = await org.client.post(
            f"/v1/members/import?dry_run={dry_run}", content=hostile.encode(), headers=headers
        )
        assert answer.status_code == (200 if dry_run == "true" else 422), answer.text
    dry = await org.client.post("/v1/members/import", content=hostile.encode(), headers=headers)
    assert [line["outcome"] for line in dry.json()["lines"]] == ["refused"] * 5
    decomposed = f"re\u0301x@{org.slug}.example"
    imported = await org.client.post(
        "/v1/members/import?dry_run=false",
        content=f"email,name\n{decomposed},Rex\n".encode(),
        headers=headers,
    )
    assert imported.status_code == 200, imported.text
    again = await org.post(
        "/v1/members", {"email": decomposed, "name": "Rex again", "unit_id": str(org.root_unit_id)}
    )
    assert again.status_code == 409, again.text
    found = (await org.get(f"/v1/members?q=r\u00e9x@{org.slug}.example")).json()["items"]
    assert [m["email"] for m in found] == [f"r\u00e9x@{org.slug}.example"]


async def test_a_default_unit_that_is_not_one_is_refused_by_the_dry_run_naming_the_query(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    """A dry run that passes must apply: the default unit is checked before either."""
    org, other_org = two_orgs
    headers = {"content-type": "text/csv", "authorization": f"Bearer {org.token}"}
    body = f"email,name\nd@{org.slug}.example,Dee\n".encode()
    for unit in (uuid.uuid4(), other_org.root_unit_id):
        for dry_run in ("true", "false"):
            answer = await org.client.post(
                f"/v1/members/import?dry_run={dry_run}&default_unit_id={unit}",
                content=body, headers=headers,
            )
            assert answer.status_code == 422, answer.text
            assert [e["field"] for e in answer.json()["errors"]] == ["query.default_unit_id"]


async def test_a_dry_run_names_the_roles_a_line_gives(org: OrgHandle) -> None:
    """The dry run said "changed — roles" for a line that made someone Admin, and nothing
    at all of a new member made Owner."""
    ada = await make_member(org, name="Ada Mensah")
    text = (
        "email,name,unit,manager_email,roles,status\n"
        f"{ada['email']},Ada Mensah,,,admin,\n"
        f"new.bie@{org.slug}.example,New Bie,,,owner,active\n"
    )
    dry = await org.client.post(
        "/v1/members/import",
        params={"dry_run": "true"},
        content=text.encode(),
        headers={**org.headers, "Content-Type": "text/csv"},
    )
    assert dry.status_code == 200, dry.text
    details = [(line["outcome"], line["detail"]) for line in dry.json()["lines"]]
    assert details == [
        ("changed", "roles: Admin"),
        ("created", "new active member New Bie, given the role Owner"),
    ]
