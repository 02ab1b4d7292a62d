"""Microsoft Entra ID's provisioning traffic, replayed from Microsoft's guides
(``tests/scim/corpus/entra.json``), ends in the state Entra shows.

Sources (named again on each sequence in the corpus):
- "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID",
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
- "Known issues and resolutions with SCIM 2.0 protocol compliance",
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tenants.scim.models import Deprovisioning
from tests.conftest import make_unit
from tests.scim.conftest import ENTERPRISE_URN, Scim
from tests.scim.corpus import corpus, replay, sequence_source
from tests.scim.test_deprovisioning import choose, status_of

TUTORIAL = "https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups"
KNOWN_ISSUES = "https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility"


async def member(scim: Scim, member_id: str) -> dict:
    response = await scim.org.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def created(scim: Scim) -> dict[str, str]:
    """Entra's create sequence (tutorial, "Create User"): the ids it leaves."""
    ids: dict[str, str] = {}
    await replay(scim, "entra", "create", ids)
    return ids


def test_every_sequence_names_its_source_and_is_replayed_here() -> None:
    found = corpus("entra")
    assert set(found["sources"].values()) == {TUTORIAL, KNOWN_ISSUES}
    source = Path(__file__).read_text()
    for name, sequence in found["sequences"].items():
        assert sequence["section"] and sequence_source("entra", name) in (TUTORIAL, KNOWN_ISSUES)
        assert f'"{name}"' in source, f"sequence {name} is not replayed"


async def test_test_connection_finds_nobody(scim: Scim) -> None:
    await replay(scim, "entra", "test_connection", {})


async def test_create_makes_an_active_member(scim: Scim) -> None:
    ids = await created(scim)
    found = await member(scim, ids["user"])
    assert found["status"] == "active"
    assert found["email"] == "test_user_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
    assert found["name"] == "givenName familyName"
    assert found["external_id"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"


async def test_update_changes_email_family_name_and_username(scim: Scim) -> None:
    ids = await created(scim)
    await replay(scim, "entra", "update", ids)
    user = (await scim.get(f"/Users/{ids['user']}")).json()
    assert user["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    assert user["name"]["familyName"] == "updatedFamilyName"
    assert (await member(scim, ids["user"]))["email"] == "updatedemail@microsoft.com"


@pytest.mark.parametrize(
    ("sequence", "display", "given", "family", "number"),
    [
        ("replace_several_without_flag", "Pvlo", "Gtfd", "Pkqf", "Eqpj"),
        ("replace_several_with_flag", "Bjfe", "Kkom", "Unua", "Aklq"),
    ],
)
async def test_replacing_several_attributes_applies_them_all(
    scim: Scim, sequence: str, display: str, given: str, family: str, number: str
) -> None:
    ids = await created(scim)
    await replay(scim, "entra", sequence, ids)
    user = (await scim.get(f"/Users/{ids['user']}")).json()
    assert user["displayName"] == display
    assert (user["name"]["givenName"], user["name"]["familyName"]) == (given, family)
    assert user[ENTERPRISE_URN]["employeeNumber"] == number
    found = await member(scim, ids["user"])
    assert found["name"] == display
    assert found["email"].startswith("test")
    if sequence == "replace_several_without_flag":
        assert found["external_id"] == "Eqpj"


async def test_adding_a_single_value_string_with_or_without_the_flag(scim: Scim) -> None:
    ids = await created(scim)
    await replay(scim, "entra", "add_single_value", ids)
    assert (await scim.get(f"/Users/{ids['user']}")).json()["nickName"] == "Babs"


@pytest.mark.parametrize(
    ("choice", "disabled"),
    [(Deprovisioning.SUSPEND, "suspended"), (Deprovisioning.DEPARTURE, "departing")],
)
async def test_disable_with_the_string_false_deprovisions_as_the_org_chose_and_true_restores(
    scim: Scim, choice: Deprovisioning, disabled: str
) -> None:
    await choose(scim.org, choice)
    ids = await created(scim)
    await replay(scim, "entra", "disable_without_flag", ids)
    assert await status_of(scim.org, ids["user"]) == disabled
    await replay(scim, "entra", "enable_without_flag", ids)
    assert await status_of(scim.org, ids["user"]) == "active"


async def test_disable_with_the_flag_suspends_and_re_enable_restores(scim: Scim) -> None:
    ids = await created(scim)
    await replay(scim, "entra", "disable_with_flag", ids)
    assert await status_of(scim.org, ids["user"]) == "suspended"
    await replay(scim, "entra", "enable_without_flag", ids)
    assert await status_of(scim.org, ids["user"]) == "active"


async def test_unassign_suspends_and_the_hard_delete_keeps_the_member(scim: Scim) -> None:
    ids = await created(scim)
    await replay(scim, "entra", "unassign_then_delete", ids)
    assert await status_of(scim.org, ids["user"]) == "suspended"


async def test_manager_links_in_every_shape_entra_sends_and_is_removed(scim: Scim) -> None:
    ids = await created(scim)
    ids["manager"] = (await scim.create_user("boss@contoso.example"))["id"]
    ids["other_manager"] = (await scim.create_user("other.boss@contoso.example"))["id"]
    await replay(scim, "entra", "manager", ids)
    assert (await member(scim, ids["user"]))["manager_id"] == ids["manager"]
    user = (await scim.get(f"/Users/{ids['user']}")).json()
    assert user[ENTERPRISE_URN]["manager"]["value"] == ids["manager"]

    await replay(scim, "entra", "manager_removed", ids)
    assert (await member(scim, ids["user"]))["manager_id"] is None

    await replay(scim, "entra", "manager", ids)
    filtered = dict(ids, manager=ids["other_manager"])
    await replay(scim, "entra", "manager_removed_by_filter", filtered)
    assert (await member(scim, ids["user"]))["manager_id"] == ids["manager"]
    await replay(scim, "entra", "manager_removed_by_filter", ids)
    assert (await member(scim, ids["user"]))["manager_id"] is None


async def test_contact_details_on_filtered_paths_are_created_beside_title_and_department(
    scim: Scim,
) -> None:
    platform = await make_unit(scim.org, "Platform")
    ids = await created(scim)
    await replay(scim, "entra", "contact_details", dict(ids, department="Platform"))
    user = (await scim.get(f"/Users/{ids['user']}")).json()
    assert sorted((p["type"], p["value"]) for p in user["phoneNumbers"]) == [
        ("mobile", "+1 425 555 0100"),
        ("work", "+1 425 555 0199"),
    ]
    assert user["addresses"] == [
        {"type": "work", "streetAddress": "1 Microsoft Way", "postalCode": "98052"}
    ]
    assert [e["value"] for e in user["emails"]] == ["new.mail@contoso.example"]
    assert user["title"] == "Engineer"
    found = await member(scim, ids["user"])
    assert (found["unit_id"], found["email"]) == (platform["id"], "new.mail@contoso.example")


async def test_one_refused_operation_leaves_the_whole_patch_unapplied(scim: Scim) -> None:
    ids = await created(scim)
    response = await scim.patch(
        f"/Users/{ids['user']}",
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 425 555 0100"},
        {"op": "Replace", "path": "title", "value": "Engineer"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].nothing', "value": "x"},
    )
    assert response.status_code == 400, response.text
    user = (await scim.get(f"/Users/{ids['user']}")).json()
    assert "phoneNumbers" not in user and "title" not in user


async def test_group_push_and_membership_end_as_entra_shows(scim: Scim) -> None:
    ids = {
        "member_1": (await scim.create_user("m1@contoso.example"))["id"],
        "member_2": (await scim.create_user("m2@contoso.example"))["id"],
    }
    await replay(scim, "entra", "group_push", ids)
    group = (await scim.get(f"/Groups/{ids['group']}")).json()
    assert group["displayName"] == "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    assert group["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert [m["value"] for m in group["members"]] == [ids["member_2"]]
    listed = (await scim.org.get(f"/v1/groups/{ids['group']}/members")).json()
    assert [m["id"] for m in listed["items"]] == [ids["member_2"]]
    await replay(scim, "entra", "group_delete", ids)
    assert (await scim.org.get(f"/v1/groups/{ids['group']}")).status_code == 404


async def test_membership_batches_add_and_remove_in_one_patch(scim: Scim) -> None:
    ids = {
        f"member_{n}": (await scim.create_user(f"m{n}@contoso.example"))["id"] for n in (1, 2, 3, 4)
    }
    group = (
        await scim.post(
            "/Groups", {"displayName": "Batch", "members": [{"value": ids["member_4"]}]}
        )
    ).json()
    ids["group"] = group["id"]
    await replay(scim, "entra", "membership_batch", ids)
    members = (await scim.get(f"/Groups/{ids['group']}")).json()["members"]
    assert [m["value"] for m in members] == [ids["member_1"]]
