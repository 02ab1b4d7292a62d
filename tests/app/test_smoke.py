from __future__ import annotations

from tests.conftest import OrgHandle, make_member


async def test_member_created_through_the_api_is_listed(org: OrgHandle) -> None:
    member = await make_member(org, name="Grace Hopper")
    listed = (await org.get("/v1/members")).json()
    assert [m["id"] for m in listed["items"]] == [member["id"]]
