"""Members through the API: lifecycle, pagination, filters, and the audit trail of each write.

The lifecycle expectations are computed from ``TRANSITIONS`` itself, so the table and the
API cannot drift apart unnoticed.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tenants.members.lifecycle import DIRECT_ACTIONS, TRANSITIONS, LifecycleAction, MemberStatus
from tenants.members.service import SORTABLE
from tests.conftest import OrgHandle, make_group, make_member, make_unit, row_counts
from tests.support.api_schema import JSON, assert_problem, error_fields
from tests.support.lifecycle import apply_as_workflow

CREATED_AS = (MemberStatus.INVITED, MemberStatus.ACTIVE)


def legal_from(status: MemberStatus) -> list[str]:
    """The actions the API offers from ``status`` (depart and purge never: a member leaves
    through a departure and is erased through the erasure path)."""
    return [
        action.value
        for action, t in TRANSITIONS.items()
        if status in t.sources and action in DIRECT_ACTIONS
    ]


def route_to(status: MemberStatus) -> tuple[MemberStatus, list[LifecycleAction]]:
    """A status a member can be created in and the legal actions that lead from it to ``status``."""
    queue: deque[tuple[MemberStatus, MemberStatus, list[LifecycleAction]]] = deque(
        (start, start, []) for start in CREATED_AS
    )
    seen: set[MemberStatus] = set()
    while queue:
        start, current, actions = queue.popleft()
        if current == status:
            return start, actions
        if current in seen:
            continue
        seen.add(current)
        for action, transition in TRANSITIONS.items():
            if current in transition.sources:
                queue.append((start, transition.target, [*actions, action]))
    raise AssertionError(f"no legal route reaches {status}")


def token_id(org: OrgHandle) -> str:
    return str(uuid.UUID(hex=org.token.split("_")[2]))


async def audit_events(org: OrgHandle) -> list[JSON]:
    response = await org.get("/v1/audit-events", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[JSON] = response.json()["items"]
    return items


async def appended(org: OrgHandle, since: list[JSON]) -> list[JSON]:
    """Audit events added after the listing ``since`` (oldest first)."""
    last = max((e["id"] for e in since), default=0)
    return sorted((e for e in await audit_events(org) if e["id"] > last), key=lambda e: e["id"])


# --- lifecycle --------------------------------------------------------------------------------


def test_every_status_is_reachable_from_a_creation_status() -> None:
    for status in MemberStatus:
        start, actions = route_to(status)
        assert start in CREATED_AS
        for action in actions:
            assert start in TRANSITIONS[action].sources
            start = TRANSITIONS[action].target
        assert start == status


@pytest.mark.parametrize(
    ("status", "action"),
    list(itertools.product(MemberStatus, LifecycleAction)),
    ids=lambda v: v.value,
)
async def test_each_action_from_each_status_follows_the_transition_table(
    status: MemberStatus, action: LifecycleAction, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    start, route = route_to(status)
    member = await make_member(org, status=start.value)
    for step in route:
        if step is LifecycleAction.BEGIN_DEPARTURE:
            # Departing is reached the one way there is: a departure with its plan.
            response = await org.post(
                "/v1/departures",
                {"member_id": member["id"], "last_day": datetime.now(UTC).date().isoformat()},
            )
            assert response.status_code == 201, response.text
            continue
        if step not in DIRECT_ACTIONS:
            await apply_as_workflow(org.id, member["id"], step.value)
            continue
        response = await org.post(f"/v1/members/{member['id']}/transitions", {"action": step.value})
        assert response.status_code == 200, response.text
    member = (await org.get(f"/v1/members/{member['id']}")).json()
    assert member["status"] == status.value
    assert member["allowed_actions"] == legal_from(status)
    counts, events = await row_counts(owner_conn), await audit_events(org)

    response = await org.post(
        f"/v1/members/{member['id']}/transitions", {"action": action.value, "reason": "tested"}
    )

    if action not in DIRECT_ACTIONS:
        # Not offered: a member departs through a departure and is purged by an erasure.
        assert error_fields(assert_problem(response, 422)).keys() == {"action"}
        assert await row_counts(owner_conn) == counts
        assert await appended(org, events) == []
    elif action is LifecycleAction.BEGIN_DEPARTURE:
        # Never through this route: POST /v1/departures starts a departure with its plan.
        problem = assert_problem(response, 409)
        assert problem["use"] == "/v1/departures"
        assert problem["allowed_actions"] == legal_from(status)
        assert await row_counts(owner_conn) == counts
        assert await appended(org, events) == []
    elif status in TRANSITIONS[action].sources:
        target = TRANSITIONS[action].target
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target.value
        assert response.json()["allowed_actions"] == legal_from(target)
        # Reinstating a departing member also cancels their departure (its own event).
        [event] = [e for e in await appended(org, events) if e["target_type"] == "member"]
        assert event["action"] == f"member.{action.value}"
        assert event["target_id"] == member["id"]
        assert event["before"] == {"status": status.value}
        assert event["after"] == {"status": target.value, "reason": "tested"}
    else:
        problem = assert_problem(response, 409)
        assert problem["type"] == "/problems/illegal_transition"
        assert problem["allowed_actions"] == legal_from(status)
        assert problem["action"] == action.value
        assert action.value.replace("_", " ") in problem["detail"]
        assert await row_counts(owner_conn) == counts
        assert await appended(org, events) == []
        assert (await org.get(f"/v1/members/{member['id']}")).json() == member


def test_purged_is_final_and_every_other_status_has_a_way_out() -> None:
    assert legal_from(MemberStatus.PURGED) == []
    assert all(
        legal_from(s) for s in MemberStatus if s not in (MemberStatus.PURGED, MemberStatus.DEPARTED)
    )
    # A departed member's ways out: reinstatement here, or the erasure path.
    assert legal_from(MemberStatus.DEPARTED) == ["reinstate"]


async def test_a_new_member_starts_invited_or_active_only(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    before = await row_counts(owner_conn)
    for status in set(MemberStatus) - set(CREATED_AS):
        response = await org.post(
            "/v1/members",
            {
                "email": f"x@{org.slug}.example",
                "name": "X",
                "unit_id": str(org.root_unit_id),
                "status": status.value,
            },
        )
        problem = assert_problem(response, 422)
        assert problem["errors"] == [{"field": "status", "reason": "expected invited or active"}]
    assert await row_counts(owner_conn) == before


# --- pagination -------------------------------------------------------------------------------

# Distinct values differ in their first letter and equal ones are equal, so the expected order
# is the same under any collation the database may use; ties exercise the id tie-breaker.
PEOPLE = [
    ("delta", "Delta", "active"),
    ("alpha", "same", "invited"),
    ("kilo", "Bravo", "active"),
    ("echo", "same", "active"),
    ("golf", "same", "invited"),
    ("bravo", "Echo", "active"),
    ("hotel", "Alpha", "invited"),
    ("juliet", "Golf", "active"),
    ("charlie", "Charlie", "invited"),
]


def sort_key(item: JSON, field: str) -> tuple[Any, uuid.UUID]:
    value = item[field]
    if field == "created_at":
        value = datetime.fromisoformat(value)
    elif field in ("email", "name"):
        value = value.lower()
    return value, uuid.UUID(item["id"])


async def walk(org: OrgHandle, params: dict[str, Any], limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        response = await org.get(
            "/v1/members",
            params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        pages.append([m["id"] for m in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


async def test_the_cursor_walks_every_member_exactly_once_in_each_sort(org: OrgHandle) -> None:
    made = [
        await make_member(org, email=f"{local}@{org.slug}.example", name=name, status=status)
        for local, name, status in PEOPLE
    ]
    everyone = (await org.get("/v1/members", params={"limit": 500})).json()["items"]
    assert {m["id"] for m in everyone} == {m["id"] for m in made}
    assert set(SORTABLE) == {"email", "name", "created_at", "status"}
    for field, descending, limit in itertools.product(SORTABLE, (False, True), (1, 2, 4)):
        sort = f"-{field}" if descending else field
        pages = await walk(org, {"sort": sort}, limit)
        walked = [i for page in pages for i in page]
        assert len(walked) == len(set(walked)) == len(made), (sort, limit)
        expected = sorted(everyone, key=lambda m: sort_key(m, field), reverse=descending)
        assert walked == [m["id"] for m in expected], (sort, limit)
        assert all(len(page) == limit for page in pages[:-1]), (sort, limit)


async def test_the_cursor_still_walks_every_member_once_when_members_join_between_pages(
    org: OrgHandle,
) -> None:
    first = [await make_member(org, email=f"{c}@{org.slug}.example") for c in "bdfh"]
    page = (await org.get("/v1/members", params={"limit": 2})).json()
    seen = [m["id"] for m in page["items"]]
    late = [await make_member(org, email=f"{c}@{org.slug}.example") for c in "aceg"]
    cursor = page["next_cursor"]
    while cursor:
        page = (await org.get("/v1/members", params={"limit": 2, "cursor": cursor})).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))
    # Everything that sorts after the first page is reached, old or new; nothing is repeated.
    by_email = {m["id"]: m["email"] for m in first + late}
    assert set(seen) == {i for i, e in by_email.items() if e > by_email[seen[1]]} | set(seen[:2])


# --- filters ------------------------------------------------------------------------------------


async def listed(org: OrgHandle, **params: Any) -> set[str]:
    response = await org.get("/v1/members", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["items"]}


async def test_filters_select_exactly_the_matching_members(org: OrgHandle) -> None:
    sales = await make_unit(org, "Sales")
    north = await make_unit(org, "North", parent=sales["id"])
    far_north = await make_unit(org, "Far North", parent=north["id"])
    support = await make_unit(org, "Support")
    boss = await make_member(
        org, name="Ada Boss", email=f"ada@{org.slug}.example", unit=sales["id"]
    )
    ann = await make_member(org, name="Ann North", unit=north["id"], manager_id=boss["id"])
    far = await make_member(
        org, name="Frank Far", unit=far_north["id"], manager_id=boss["id"], status="invited"
    )
    sam = await make_member(
        org,
        name="Sam Support",
        email=f"helpdesk-sam@{org.slug}.example",
        unit=support["id"],
        manager_id=ann["id"],
        status="invited",
    )
    root = await make_member(org, name="Rita Root")
    group = await make_group(org)
    for member in (ann, sam):
        assert (
            await org.put(f"/v1/groups/{group['id']}/members/{member['id']}")
        ).status_code == 204
    ids = {
        name: m["id"]
        for name, m in {"boss": boss, "ann": ann, "far": far, "sam": sam, "root": root}.items()
    }

    def of(*names: str) -> set[str]:
        return {ids[n] for n in names}

    assert await listed(org) == of("boss", "ann", "far", "sam", "root")
    assert await listed(org, status="invited") == of("far", "sam")
    assert await listed(org, status="active") == of("boss", "ann", "root")
    assert await listed(org, status="departed") == set()
    assert await listed(org, unit_id=sales["id"]) == of("boss", "ann", "far")
    assert await listed(org, unit_id=sales["id"], subtree="true") == of("boss", "ann", "far")
    assert await listed(org, unit_id=sales["id"], subtree="false") == of("boss")
    assert await listed(org, unit_id=north["id"]) == of("ann", "far")
    assert await listed(org, unit_id=far_north["id"], subtree="false") == of("far")
    assert await listed(org, unit_id=str(org.root_unit_id)) == of(
        "boss", "ann", "far", "sam", "root"
    )
    assert await listed(org, unit_id=str(org.root_unit_id), subtree="false") == of("root")
    assert await listed(org, group_id=group["id"]) == of("ann", "sam")
    assert await listed(org, group_id=str(uuid.uuid4())) == set()
    assert await listed(org, manager_id=boss["id"]) == of("ann", "far")
    assert await listed(org, manager_id=ann["id"]) == of("sam")
    assert await listed(org, q="north") == of("ann")  # name, any case
    assert await listed(org, q="HELPDESK") == of("sam")  # email, any case
    assert await listed(org, q="ada@") == of("boss")
    assert await listed(org, q=f"{org.slug}.example") == of("boss", "ann", "far", "sam", "root")
    assert await listed(org, q="%") == set()  # LIKE wildcards are text, not patterns
    assert await listed(org, q="_") == set()
    assert await listed(org, q="nobody") == set()
    assert await listed(org, unit_id=sales["id"], status="invited") == of("far")
    assert await listed(org, group_id=group["id"], manager_id=ann["id"], q="sam") == of("sam")
    problem = assert_problem(
        await org.get("/v1/members", params={"unit_id": str(uuid.uuid4())}), 404
    )
    assert problem["type"] == "/problems/not_found"


# --- the audit trail of each write ------------------------------------------------------------


async def test_each_member_write_appends_exactly_one_audit_event_with_actor_and_changes(
    org: OrgHandle,
) -> None:
    unit = await make_unit(org)
    manager = await make_member(org)
    events = await audit_events(org)

    async def one_event(response: Any, status: int = 200) -> JSON:
        assert response.status_code == status, response.text
        new = await appended(org, events)
        assert len(new) == 1, new
        event = new[0]
        assert event["actor"] == f"api_token:{token_id(org)}"
        assert event["actor_display"] == "API token tests"
        assert event["request_id"] == response.headers["x-request-id"]
        assert event["client_addr"] == "203.0.113.7"
        assert event["target_type"] == "member"
        events.extend(new)
        return event

    email = f"Grace@{org.slug}.example"
    response = await org.post(
        "/v1/members",
        {
            "email": email,
            "name": "Grace Hopper",
            "unit_id": str(org.root_unit_id),
            "manager_id": manager["id"],
            "roles": ["admin", "member", "admin"],
        },
    )
    member = response.json()
    event = await one_event(response, 201)
    assert (event["action"], event["target_id"], event["before"]) == (
        "member.created",
        member["id"],
        None,
    )
    assert event["after"] == {
        "email": email.lower(),
        "name": "Grace Hopper",
        "unit_id": str(org.root_unit_id),
        "manager_id": manager["id"],
        "roles": ["admin", "member"],
        "idp_subject": None,
        "external_id": None,
        "status": "invited",
    }

    event = await one_event(
        await org.patch(f"/v1/members/{member['id']}", {"name": "Grace B. Hopper", "email": email})
    )
    assert (event["action"], event["before"], event["after"]) == (
        "member.updated",
        {"name": "Grace Hopper"},
        {"name": "Grace B. Hopper"},
    )

    event = await one_event(
        await org.patch(f"/v1/members/{member['id']}", {"manager_id": None, "external_id": "e-1"})
    )
    assert (event["before"], event["after"]) == (
        {"manager_id": manager["id"], "external_id": None},
        {"manager_id": None, "external_id": "e-1"},
    )

    event = await one_event(
        await org.post(f"/v1/members/{member['id']}/move", {"unit_id": unit["id"]})
    )
    assert (event["action"], event["before"], event["after"]) == (
        "member.moved",
        {"unit_id": str(org.root_unit_id)},
        {"unit_id": unit["id"]},
    )

    event = await one_event(
        await org.post(f"/v1/members/{member['id']}/transitions", {"action": "activate"})
    )
    assert (event["action"], event["before"], event["after"]) == (
        "member.activate",
        {"status": "invited"},
        {"status": "active", "reason": None},
    )

    # Writes that change nothing succeed and record nothing.
    for response in (
        await org.patch(f"/v1/members/{member['id']}", {"name": "Grace B. Hopper"}),
        await org.patch(f"/v1/members/{member['id']}", {}),
        await org.post(f"/v1/members/{member['id']}/move", {"unit_id": unit["id"]}),
    ):
        assert response.status_code == 200, response.text
    assert await appended(org, events) == []

    # The trail can be read back per member, newest first.
    response = await org.get("/v1/audit-events", params={"target_id": member["id"]})
    actions = [e["action"] for e in response.json()["items"]]
    assert actions == [
        "member.activate",
        "member.moved",
        "member.updated",
        "member.updated",
        "member.created",
    ]


async def test_a_search_ignores_accents_and_case_in_names(org: OrgHandle) -> None:
    """A search for "garcia" finds García and "lukasz" Łukasz (migration 0037: the names' trigram index
    is built on search_key, upper case without accents); accents typed find the plain
    spelling too, and an address is still matched as it is spelt."""
    garcia = await make_member(org, name="Ada García", email="ada.g@example.org")
    lukasz = await make_member(org, name="Łukasz Nowak", email="l.n@example.org")
    plain = await make_member(org, name="Jose Plain", email="jose@example.org")
    await make_member(org, name="Someone Else", email="someone@example.org")
    assert await listed(org, q="ada garcia") == {garcia["id"]}
    assert await listed(org, q="GARCÍA") == {garcia["id"]}
    assert await listed(org, q="lukasz") == {lukasz["id"]}
    assert await listed(org, q="josé") == {plain["id"]}


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("null", "missing column email"),
        ("email;name\na@x.example;A\n", "missing column email"),
        ("", "the file is empty"),
    ],
)
async def test_a_file_whose_header_cannot_be_read_is_refused_whole_naming_the_body(
    org: OrgHandle, body: str, said: str
) -> None:
    """A body that was no import file at all (``null``, a header without the columns)
    answered 200 with one refused "line"; it is a 422 naming the body, dry run or not."""
    for dry_run in ("true", "false"):
        response = await org.client.post(
            "/v1/members/import",
            params={"dry_run": dry_run},
            content=body.encode(),
            headers={**org.headers, "Content-Type": "text/csv"},
        )
        problem = assert_problem(response, 422)
        assert [e["field"] for e in problem["errors"]] == ["body"], problem
        assert said in problem["errors"][0]["reason"], problem
