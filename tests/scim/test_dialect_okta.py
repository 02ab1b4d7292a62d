"""Okta's provisioning traffic, replayed from Okta's guides (``tests/scim/corpus/okta.json``),
ends in the state Okta shows.

Sources (named again on each sequence in the corpus):
- "SCIM 2.0 protocol reference",
  https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20/
- "Build a SCIM provisioning integration" (Build your SCIM API service),
  https://developer.okta.com/docs/guides/scim-provisioning-integration-prepare/main/
"""

from __future__ import annotations

from pathlib import Path

from tests.scim.conftest import Scim
from tests.scim.corpus import corpus, replay, sequence_source
from tests.scim.test_deprovisioning import status_of
from tests.scim.test_dialect_entra import member

REFERENCE = "https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20/"
BUILD = "https://developer.okta.com/docs/guides/scim-provisioning-integration-prepare/main/"


async def created(scim: Scim) -> dict[str, str]:
    """Okta's create sequence (reference, "Create Users"): the ids it leaves."""
    ids: dict[str, str] = {}
    await replay(scim, "okta", "create", ids)
    return ids


def test_every_sequence_names_its_source_and_is_replayed_here() -> None:
    found = corpus("okta")
    assert set(found["sources"].values()) == {REFERENCE, BUILD}
    source = Path(__file__).read_text()
    for name, sequence in found["sequences"].items():
        assert sequence["section"] and sequence_source("okta", name) in (REFERENCE, BUILD)
        assert f'"{name}"' in source, f"sequence {name} is not replayed"


async def test_create_ignores_the_password_and_refuses_a_duplicate(scim: Scim) -> None:
    ids = await created(scim)
    found = await member(scim, ids["user"])
    assert (found["status"], found["email"], found["name"]) == (
        "active",
        "test.user@okta.local",
        "Test User",
    )
    assert found["external_id"] == "00ujl29u0le5T6Aj10h7"
    assert "password" not in (await scim.get(f"/Users/{ids['user']}")).json()


async def test_import_and_put_update(scim: Scim) -> None:
    ids = await created(scim)
    await replay(scim, "okta", "import", ids)
    await replay(scim, "okta", "update_put", ids)
    user = (await scim.get(f"/Users/{ids['user']}")).json()
    assert user["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    assert user["emails"][0]["display"] == "test.user@okta.local"


async def test_deactivate_suspends_and_reactivate_restores(scim: Scim) -> None:
    ids = await created(scim)
    await replay(scim, "okta", "deactivate", ids)
    assert await status_of(scim.org, ids["user"]) == "suspended"
    await replay(scim, "okta", "reactivate", ids)
    assert await status_of(scim.org, ids["user"]) == "active"
    await replay(scim, "okta", "deactivate_put", ids)
    assert await status_of(scim.org, ids["user"]) == "suspended"


async def test_password_sync_is_accepted_and_changes_nothing(scim: Scim) -> None:
    ids = await created(scim)
    before = (await scim.get(f"/Users/{ids['user']}")).headers["etag"]
    answers = await replay(scim, "okta", "password_sync", ids)
    assert [a.headers["etag"] for a in answers] == [before, before]
    events = (await scim.org.get("/v1/audit-events", params={"target_id": ids["user"]})).json()
    assert "t1meMa$heen" not in str(events)


async def test_group_push_membership_and_unlink(scim: Scim) -> None:
    ids = await created(scim)
    ids["other"] = (await scim.create_user("other@okta.local"))["id"]
    await replay(scim, "okta", "group_push", ids)
    await replay(scim, "okta", "membership", ids)
    group = (await scim.get(f"/Groups/{ids['group']}")).json()
    assert group["displayName"] == "Test SCIMv20"
    assert [m["value"] for m in group["members"]] == [ids["user"]]
    await replay(scim, "okta", "membership_full_push", ids)
    listed = (await scim.org.get(f"/v1/groups/{ids['group']}/members")).json()
    assert sorted(m["id"] for m in listed["items"]) == sorted([ids["user"], ids["other"]])
    await replay(scim, "okta", "group_delete", ids)
    assert (await scim.org.get(f"/v1/groups/{ids['group']}")).status_code == 404
