"""Pages and lookups cost what they return, not what the organisation holds (issue 16):
the plans PostgreSQL picks for them, on an organisation large enough that a scan would be
cheaper than an index if the index did not fit, in custom and in generic plans (asyncpg
prepares every statement; PostgreSQL may switch to the generic plan after five calls)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app import database
from app.database import DatabaseUrls
from tenants import db
from tenants.audit import service as audit
from tenants.members import service as members
from tenants.members.lifecycle import MemberStatus
from tenants.organisations import service as organisations
from tenants.overview import sign_ins_per_day
from tenants.pagination import Sort
from tenants.sessions import service as sessions
from tenants.units import service as unit_service
from tenants.units.models import Unit
from tests.conftest import OrgHandle, make_member, make_org

UNITS = 300
MEMBERS = 6000


@pytest.fixture
async def runtime_conn(database_urls: DatabaseUrls, client: object) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection as the login role the service uses, without the pool's settings."""
    conn = await asyncpg.connect(**database.connection_params(database_urls.app))
    yield conn
    await conn.close()


async def populate(owner_conn: asyncpg.Connection, org: OrgHandle) -> list[tuple[uuid.UUID, str]]:
    """UNITS units under the root (each with one child) and MEMBERS members spread over
    them, written directly and analysed; returns the (id, path) of the leaf units."""
    root_path = await owner_conn.fetchval("SELECT path FROM units WHERE id = $1", org.root_unit_id)
    parents = [uuid.uuid4() for _ in range(UNITS)]
    leaves = [uuid.uuid4() for _ in range(UNITS)]
    rows = [(p, org.root_unit_id, f"{root_path}/{p}", 1, f"Unit {i}") for i, p in enumerate(parents)]
    rows += [(leaf, p, f"{root_path}/{p}/{leaf}", 2, f"Leaf {i}")
             for i, (p, leaf) in enumerate(zip(parents, leaves, strict=True))]
    await owner_conn.executemany(
        "INSERT INTO units (id, tenant_id, parent_id, path, depth, name, created_at, updated_at) "
        "VALUES ($1, $6, $2, $3, $4, $5, now(), now())",
        [(*r, org.id) for r in rows],
    )
    all_units = [r[0] for r in rows]
    await owner_conn.execute(
        """
        INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status, created_at, updated_at)
        SELECT gen_random_uuid(), $1, 'person' || i || '@' || $2, 'Person ' || md5(i::text),
               ($3::uuid[])[1 + i % array_length($3::uuid[], 1)], '["member"]', 'active', now(), now()
          FROM generate_series(1, $4) i
        """,
        org.id, f"{org.slug}.example", all_units, MEMBERS,
    )
    # The tables as a live organisation's would be: compact (tests empty them with DELETE,
    # so earlier tests leave their pages and index entries behind, which tilts the planner
    # at this small size), analysed, and their GIN indexes built whole (no pending lists).
    # Each test that reads a plan does the same for the tables it reads.
    await owner_conn.execute("VACUUM (FULL, ANALYZE) units, members, sessions, audit_events")
    return [(leaf, f"{root_path}/{p}/{leaf}") for p, leaf in zip(parents, leaves, strict=True)]


def literal(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "'{" + ",".join(str(v) for v in value) + "}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def plans(
    conn: asyncpg.Connection, org: OrgHandle, sql: str, params: Sequence[Any], *,
    nestloop: bool = True, seqscan: bool = True,
) -> list[str]:
    """The custom and the generic plan of ``sql`` (a prepared statement, as asyncpg runs
    it) for ``params``, in the organisation's transaction. ``nestloop=False``: as the
    planner plans a join once the table is large (a hash join over all of it), so a
    plan that is an index look-up only while the table is small shows here.
    ``seqscan=False``: whether an index can answer at all, for a table that a scan of a
    few pages answers as cheaply at this size (a condition no index can serve, such as one
    row-level security keeps from the index, still scans)."""
    found = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
            await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
            if not nestloop:
                await conn.execute("SET LOCAL enable_nestloop = off")
            if not seqscan:
                await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute(f"PREPARE probe AS {sql}")
            args = ", ".join(literal(p) for p in params)
            rows = await conn.fetch(f"EXPLAIN EXECUTE probe({args})" if params else "EXPLAIN EXECUTE probe")
            await conn.execute("DEALLOCATE probe")
        found.append("\n".join(r[0] for r in rows))
    return found


def statement(query: Any) -> tuple[str, list[Any]]:
    """The SQL and parameters tortoise sends for ``query`` (as the prepared statement)."""
    query.sql()  # builds the query
    sql, params = query.query.get_parameterized_sql()
    return sql, list(params)


async def test_member_search_finds_substrings_of_email_and_name_in_any_case(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await populate(owner_conn, org)
    expected = await owner_conn.fetch(
        "SELECT id FROM members WHERE tenant_id = $1 AND (name ILIKE '%e8F%' OR email ILIKE '%E8f%')",
        org.id,
    )
    by_email = await make_member(org, email=f"Findable.Person@{org.slug}.example", name="X")
    async with db.tenant_transaction(org.id):
        page = await members.list_members(
            members.MemberFilter(q="e8F"), Sort.parse("name", members.SORTABLE), cursor=None, limit=500
        )
        assert {m.id for m in page.items} == {r["id"] for r in expected}
        page = await members.list_members(
            members.MemberFilter(q="dable.PERS"), Sort.parse("name", members.SORTABLE), cursor=None, limit=5
        )
        assert [str(m.id) for m in page.items] == [by_email["id"]]


async def test_member_search_is_answered_by_trigram_indexes_in_custom_and_generic_plans(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """The search runs as members_matching's body, as its owner (SECURITY DEFINER)."""
    await populate(owner_conn, org)
    body = await owner_conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'members_matching'")
    sql = body.replace("p_pattern", "$1::text").replace("p_limit", "$2::int")
    found = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        async with owner_conn.transaction():
            await owner_conn.execute("SET LOCAL ROLE tenantry_owner")
            await owner_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
            await owner_conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
            await owner_conn.execute(f"PREPARE probe AS {sql}")
            rows = await owner_conn.fetch("EXPLAIN EXECUTE probe('%C4CA42%', 2001)")
            await owner_conn.execute("DEALLOCATE probe")
        found.append("\n".join(r[0] for r in rows))
    for plan in found:
        assert "members_email_trgm" in plan and "members_name_folded_trgm" in plan, plan
        assert "Seq Scan" not in plan, plan


async def test_unit_search_is_answered_by_its_trigram_index_in_custom_and_generic_plans(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """The units page's search runs as units_matching's body, as its owner."""
    await populate(owner_conn, org)
    body = await owner_conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'units_matching'")
    sql = body.replace("p_pattern", "$1::text").replace("p_limit", "$2::int")
    for mode in ("force_custom_plan", "force_generic_plan"):
        async with owner_conn.transaction():
            await owner_conn.execute("SET LOCAL ROLE tenantry_owner")
            await owner_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
            await owner_conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
            await owner_conn.execute(f"PREPARE probe AS {sql}")
            plan = "\n".join(r[0] for r in await owner_conn.fetch("EXPLAIN EXECUTE probe('%EAF 12%', 500)"))
            await owner_conn.execute("DEALLOCATE probe")
        assert "units_name_folded_trgm" in plan and "Seq Scan" not in plan, plan


async def test_searches_are_planned_for_the_text_searched_on_every_call(
    owner_conn: asyncpg.Connection,
) -> None:
    """PostgreSQL 18 keeps a SQL function's plan and after five calls may settle on one
    made without the text: 16.7 ms instead of 1.3 ms for a member search among a million
    members (the plans above are what each mode would run; this is which one runs)."""
    rows = await owner_conn.fetch(
        "SELECT proname, proconfig FROM pg_proc "
        "WHERE proname IN ('members_matching', 'units_matching') ORDER BY proname"
    )
    assert [(r["proname"], "plan_cache_mode=force_custom_plan" in r["proconfig"]) for r in rows] == [
        ("members_matching", True),
        ("units_matching", True),
    ]


async def test_the_units_page_reads_the_counters_of_its_units_only(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    """Counter names given as parameters (not built in SQL, where ``||`` is not leakproof
    and row-level security keeps the index out of reach): a look-up of the primary key
    in custom and generic plans, with a counter per unit of the organisation present."""
    leaves = await populate(owner_conn, org)
    await owner_conn.execute("VACUUM (FULL, ANALYZE) tenant_counters")
    names = "{" + ",".join(f"unit_members.{leaf}" for leaf, _ in leaves[:3]) + "}"
    sql = "SELECT name, n FROM tenant_counters WHERE tenant_id = $1 AND name = ANY($2::text[])"
    for plan in await plans(runtime_conn, org, sql, [org.id, names], seqscan=False):
        assert "tenant_counters_pkey" in plan and "Seq Scan" not in plan, plan
    async with db.tenant_transaction(org.id):
        counts = await unit_service.member_counts([leaf for leaf, _ in leaves[:3]])
    assert sum(counts.values()) == await owner_conn.fetchval(
        "SELECT count(*) FROM members WHERE unit_id = ANY($1::uuid[])", [leaf for leaf, _ in leaves[:3]]
    )


async def test_member_search_sees_only_the_callers_organisation(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    other = await make_org(org.client)
    mine = await make_member(org, name="Shared Name")
    await make_member(other, name="Shared Name")
    async with runtime_conn.transaction():
        await runtime_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
        rows = await runtime_conn.fetch("SELECT id FROM members_matching('%RED NA%', 10) AS id")
    assert [str(r["id"]) for r in rows] == [mine["id"]]
    assert await runtime_conn.fetch("SELECT id FROM members_matching('%RED NA%', 10) AS id") == []


@pytest.mark.parametrize("text", ["e8F", "8fa", "PERSON", "%", "_e"])
async def test_member_search_finds_the_same_members_whichever_way_it_is_answered(
    org: OrgHandle, owner_conn: asyncpg.Connection, text: str
) -> None:
    """Short (no trigrams), selective (trigram ids) and broad (more than the cap: the
    sort order walked) searches all mean: email or name contains the text, any case."""
    await populate(owner_conn, org)
    expected = await owner_conn.fetch(
        "SELECT id FROM members WHERE tenant_id = $1 AND "
        "(strpos(upper(name), upper($2)) > 0 OR strpos(upper(email), upper($2)) > 0)",
        org.id, text,
    )
    async with db.tenant_transaction(org.id):
        page = await members.list_members(
            members.MemberFilter(q=text), Sort.parse("name", members.SORTABLE), cursor=None, limit=10_000
        )
    assert {m.id for m in page.items} == {r["id"] for r in expected}


async def test_subtree_filter_uses_the_path_index_in_custom_and_generic_plans(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    leaves = await populate(owner_conn, org)
    leaf_id, _ = leaves[7]
    async with db.tenant_transaction(org.id):
        query = (await members._filtered(members.MemberFilter(unit_id=leaf_id))).order_by("name", "id").limit(51)
        sql, params = statement(query)
        found = await members.list_members(
            members.MemberFilter(unit_id=leaf_id), Sort.parse("name", members.SORTABLE), cursor=None, limit=500
        )
    path_index = await owner_conn.fetchval(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'units' AND indexdef LIKE '%(tenant_id, path)%'"
    )
    assert path_index
    for plan in await plans(runtime_conn, org, sql, params):
        assert path_index in plan, plan
        assert "Seq Scan" not in plan, plan
    expected = await owner_conn.fetch("SELECT id FROM members WHERE unit_id = $1", leaf_id)
    assert {m.id for m in found.items} == {r["id"] for r in expected} and expected


async def test_a_subtree_is_the_unit_and_everything_below_it_and_nothing_else(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    leaves = await populate(owner_conn, org)
    _, leaf_path = leaves[3]
    parent_id = uuid.UUID(leaf_path.split("/")[-2])
    async with db.tenant_transaction(org.id):
        parent = await Unit.get(id=parent_id)
        page = await members.list_members(
            members.MemberFilter(unit_id=parent_id), Sort.parse("name", members.SORTABLE), cursor=None, limit=500
        )
    expected = await owner_conn.fetch(
        "SELECT m.id FROM members m JOIN units u ON u.id = m.unit_id "
        "WHERE u.path = $1 OR u.path LIKE $1 || '/%'",
        parent.path,
    )
    assert {m.id for m in page.items} == {r["id"] for r in expected}
    assert len(expected) == 2 * MEMBERS // (2 * UNITS)


async def test_a_session_is_found_by_its_hash_through_an_index(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    await populate(owner_conn, org)
    member = await owner_conn.fetchval("SELECT id FROM members WHERE tenant_id = $1 LIMIT 1", org.id)
    await owner_conn.execute(
        "INSERT INTO sessions (id, tenant_id, member_id, secret_hash, auth_method, last_seen_at, "
        "expires_at, created_at, updated_at) "
        "SELECT gen_random_uuid(), $1, $2, md5(i::text) || md5(i::text), 'oidc', now(), now() + "
        "interval '1 hour', now(), now() "
        "FROM generate_series(1, 5000) i",
        org.id, member,
    )
    await owner_conn.execute("VACUUM (FULL, ANALYZE) sessions")
    sql = 'SELECT * FROM "sessions" WHERE "secret_hash"=$1 LIMIT $2'
    for plan in await plans(runtime_conn, org, sql, ["ab" * 32, 1]):
        assert "sessions_tenant_secret_hash" in plan, plan


async def test_the_sweep_deletes_expired_sessions_of_every_organisation_and_only_those(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    other = await make_org(org.client)
    now = datetime.now(UTC)
    ids: dict[str, uuid.UUID] = {}
    for handle in (org, other):
        member = await make_member(handle)
        for name, expires in (("expired", now - timedelta(minutes=1)), ("live", now + timedelta(hours=1))):
            ids[f"{handle.slug}-{name}"] = session_id = uuid.uuid4()
            await owner_conn.execute(
                "INSERT INTO sessions (id, tenant_id, member_id, secret_hash, auth_method, last_seen_at, "
                "expires_at, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, 'oidc', now(), $5, now(), now())",
                session_id, handle.id, uuid.UUID(member["id"]), uuid.uuid4().hex * 2, expires,
            )
    assert await sessions.delete_expired_sessions(limit=1) == 1
    assert await sessions.delete_expired_sessions() == 1
    assert await sessions.delete_expired_sessions() == 0
    left = {r["id"] for r in await owner_conn.fetch("SELECT id FROM sessions")}
    assert left == {ids[f"{org.slug}-live"], ids[f"{other.slug}-live"]}


async def test_the_overview_counts_follow_every_insert_status_change_and_delete(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await populate(owner_conn, org)
    other = await make_org(org.client)
    await make_member(other)
    first = await make_member(org, status="invited")
    await make_member(org)
    response = await org.post(f"/v1/members/{first['id']}/transitions", {"action": "activate"})
    assert response.status_code in (200, 201), response.text
    await owner_conn.execute(
        "DELETE FROM members WHERE tenant_id = $1 AND id IN "
        "(SELECT id FROM members WHERE tenant_id = $1 AND email LIKE 'person1%' LIMIT 40)",
        org.id,
    )
    await owner_conn.execute(
        "UPDATE members SET status = 'suspended' WHERE tenant_id = $1 AND email LIKE 'person2%'", org.id
    )
    for handle in (org, other):
        async with db.tenant_transaction(handle.id):
            counted = await organisations.counters()
        actual = {
            f"members.{r['status']}": r["n"]
            for r in await owner_conn.fetch(
                "SELECT status, count(*) AS n FROM members WHERE tenant_id = $1 GROUP BY 1", handle.id
            )
        }
        for table in ("members", "units", "groups", "products"):
            actual[table] = await owner_conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", handle.id)
        assert {k: v for k, v in counted.items() if v} == {k: v for k, v in actual.items() if v}
    assert counted["members"] == 1 and counted["units"] == 1


async def test_the_break_glass_list_reads_its_own_index(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    await owner_conn.execute(
        "INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, "
        "target_type, target_id, after) "
        "SELECT $1, now(), 'system:x', 'x', CASE WHEN i % 3 = 0 THEN 'session.signed_in' ELSE 'member.updated' END, "
        "'member', 'm', jsonb_build_object('break_glass', i % 997 = 0) FROM generate_series(1, 20000) i",
        org.id,
    )
    await owner_conn.execute("VACUUM (FULL, ANALYZE) audit_events")
    for plan in await plans(runtime_conn, org, audit.BREAK_GLASS_SQL, [org.id, 5]):
        assert "audit_events_break_glass" in plan, plan
    async with db.tenant_transaction(org.id):
        listed = await audit.break_glass_sign_ins(5)
    assert len(listed) == 5


async def test_the_runtime_role_runs_without_jit(runtime_conn: asyncpg.Connection, org: OrgHandle) -> None:
    assert await runtime_conn.fetchval("SHOW jit") == "off"
    async with db.tenant_transaction(org.id):
        row = await db.fetch_one("SELECT current_setting('jit') AS jit")
    assert row == {"jit": "off"}


async def test_the_sign_in_chart_reads_counters_that_follow_every_sign_in_event(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Events of several days, of both actions and others, of another organisation too:
    the chart's counters say what counting the audit events per UTC day says."""
    other = await make_org(org.client)
    today = datetime.now(UTC).date()
    for handle, days in ((org, 20), (other, 3)):
        await owner_conn.execute(
            "INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, "
            "target_type, target_id, after) "
            "SELECT $1, now() - make_interval(hours => i * 7 % ($2 * 24)), 'system:x', 'x', "
            "(ARRAY['session.signed_in', 'session.sign_in_refused', 'member.updated'])[1 + i % 3], "
            "'member', 'm', '{}' FROM generate_series(1, 300) i",
            handle.id, days,
        )
    for handle in (org, other):
        async with db.tenant_transaction(handle.id):
            chart = await sign_ins_per_day(today)
        rows = await owner_conn.fetch(
            "SELECT action, (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n "
            "FROM audit_events WHERE tenant_id = $1 AND action LIKE 'session.%' GROUP BY 1, 2",
            handle.id,
        )
        expected = {"signed_in": [0] * 14, "refused": [0] * 14}
        for row in rows:
            index = (row["day"] - (today - timedelta(days=13))).days
            if 0 <= index < 14:
                key = "signed_in" if row["action"] == "session.signed_in" else "refused"
                expected[key][index] = row["n"]
        assert chart == expected
        assert sum(chart["signed_in"]) > 0


async def test_the_members_lists_total_reads_the_counters_and_says_what_counting_says(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await make_member(org, status="invited")
    unit = (await org.post("/v1/units", {"name": "Counted", "parent_id": str(org.root_unit_id)})).json()
    await make_member(org, unit=unit["id"])
    for filters in (
        members.MemberFilter(),
        members.MemberFilter(status=MemberStatus.INVITED),
        members.MemberFilter(status=MemberStatus.SUSPENDED),
        members.MemberFilter(unit_id=uuid.UUID(unit["id"])),
    ):
        async with db.tenant_transaction(org.id):
            total = await members.count_members(filters)
        status = filters.status.value if filters.status else None
        unit_id = filters.unit_id
        expected = await owner_conn.fetchval(
            "SELECT count(*) FROM members WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) "
            "AND ($3::uuid IS NULL OR unit_id = $3)",
            org.id, status, unit_id,
        )
        assert total == expected, filters


def test_members_statuses_are_all_counted() -> None:
    assert {s.value for s in MemberStatus} >= {"active", "invited", "departing", "suspended"}


async def test_admin_lookups_read_the_staff_index_not_every_member(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Who to email about a domain or a privacy request, who may handle or review, whether
    another owner is left: each finds the right people, and each statement reads the
    partial index ``members_staff`` in custom and generic plans, never every member."""
    from app.web.console import privacy as privacy_page
    from app.web.console import reviews as reviews_page
    from tenants.domains import service as domains
    from tenants.requests import service as requests
    from tenants.reviews import service as reviews
    from tenants.reviews.rules import ScopeKind

    await populate(owner_conn, org)
    admin = await make_member(org, name="Ada Admin", roles=["admin"])
    officer = await make_member(org, name="Olu Officer", roles=["privacy_officer"])
    auditor = await make_member(org, name="Aud Auditor", roles=["auditor"])
    second_owner = await make_member(org, name="Oona Owner", roles=["owner"])
    gone = await make_member(org, name="Gone Owner", roles=["owner"])
    await owner_conn.execute("UPDATE members SET status = 'suspended' WHERE id = $1", uuid.UUID(gone["id"]))
    await owner_conn.execute("VACUUM (FULL, ANALYZE) members")
    sent: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("fetch", "fetch_one"):
        real = getattr(db, name)

        async def spy(sql: str, *args: Any, _real: Any = real) -> Any:
            if "roles" in sql and "FROM members" in sql:
                sent.append((sql, args))
            return await _real(sql, *args)

        monkeypatch.setattr(db, name, spy)
    async with db.tenant_transaction(org.id):
        owners = await domains.owner_emails()
        officers = await requests.officer_emails()
        others = await members.other_owners(uuid.UUID(second_owner["id"]))
        handlers = {m.name for m in await privacy_page.handlers_choice()}
        reviewers = {m.name for m in await reviews_page.reviewer_choices()}
        standing = await reviews._standing_access({ScopeKind.ADMIN_ROLES})
    monkeypatch.undo()
    assert second_owner["email"] in owners and admin["email"] not in owners
    assert officer["email"] in officers and auditor["email"] not in officers
    assert admin["email"] not in officers  # privacy officers first: there is one
    assert others == len(owners) - 1  # the other active owners; the suspended one cannot act
    assert {"Olu Officer", "Ada Admin"} <= handlers and "Aud Auditor" not in handlers
    assert {"Ada Admin", "Olu Officer", "Oona Owner", "Aud Auditor"} <= reviewers
    assert "Gone Owner" not in reviewers and not reviewers & {"Person 1", "Test Member"}
    assert {a.member_id for a in standing} >= {uuid.UUID(m["id"]) for m in (admin, officer, auditor)}
    assert len(sent) >= 6
    for sql, args in sent:
        for plan in await plans(runtime_conn, org, sql, args):
            assert "members_staff" in plan and "Seq Scan" not in plan, (sql, plan)


async def test_preview_classes_read_the_scope_once_whatever_the_planner_estimates(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    """The scope is scanned once and each member's groups and choice are joined from the
    tables (index probes or a hash join), never from a CTE a nested loop would read again
    for every member: beside a much larger organisation the subtree is underestimated
    (a whole organisation of 10,000 taken for 51 members), and that plan took 9 s."""
    from tenants.policy.service import _UNIT_SCOPE, CLASSES_SQL
    from tenants.units.rules import subtree_bounds

    await populate(owner_conn, org)
    root_path = await owner_conn.fetchval("SELECT path FROM units WHERE id = $1", org.root_unit_id)
    low, high = subtree_bounds(root_path)
    groups = [uuid.uuid4(), uuid.uuid4()]
    sql = CLASSES_SQL.format(scope=_UNIT_SCOPE)
    for plan in await plans(runtime_conn, org, sql, [org.id, low, groups, "advertising.personalised_ads", high]):
        assert plan.count("CTE Scan") == 1, plan
        assert "Join Filter" not in plan, plan


async def test_the_policies_page_looks_up_the_names_of_ruled_units_by_key(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    """The names a setting's provenance can show, those of the units and groups that carry
    rules: each looked up by its key in custom and generic plans, never a pass over every
    unit (written as a semi-join, the planner scanned the 20,000 units of a million-member
    organisation for each page)."""
    from app.web.console.policies import RULE_TARGET_NAMES_SQL, rule_target_names

    leaves = await populate(owner_conn, org)
    group = await owner_conn.fetchval(
        "INSERT INTO groups (id, tenant_id, name, description, priority, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, 'Ruled group', '', 0, now(), now()) RETURNING id",
        org.id,
    )
    ruled = [leaf for leaf, _ in leaves[:3]]
    await owner_conn.executemany(
        "INSERT INTO policy_rules (id, tenant_id, unit_id, group_id, setting, value, enforced, "
        "reason, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, 'true', false, "
        "'', now(), now())",
        [(org.id, u, None, f"s{i}") for i, u in enumerate(ruled)] + [(org.id, None, group, "s9")],
    )
    await owner_conn.execute("VACUUM (FULL, ANALYZE) units, groups, policy_rules")
    for plan in await plans(runtime_conn, org, RULE_TARGET_NAMES_SQL, [], nestloop=False):
        assert "Seq Scan on units" not in plan and "units_pkey" in plan, plan
    async with db.tenant_transaction(org.id):
        names = await rule_target_names()
    expected = await owner_conn.fetch(
        "SELECT id::text, name FROM units WHERE id = ANY($1::uuid[])", ruled
    )
    assert names == {**{r["id"]: r["name"] for r in expected}, str(group): "Ruled group"}


async def test_the_audit_logs_exact_action_filter_reads_the_prefix_index(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The action index made for prefixes (text_pattern_ops) answers an exact action too,
    newest first, in custom and generic plans, with thousands of events of other actions
    present: migration 0033 dropped its plain twin, which every event paid to write."""
    await owner_conn.execute(
        """
        INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action,
                                  target_type, target_id)
        SELECT $1, now(), 'system:t', 't', (ARRAY['member.updated', 'unit.created',
               'policy.rule_set', 'session.signed_in'])[1 + i % 4] || (i % 50)::text,
               'member', i::text
          FROM generate_series(1, 8000) i
        """,
        org.id,
    )
    await owner_conn.execute("VACUUM (FULL, ANALYZE) audit_events")
    sent: list[tuple[str, tuple[Any, ...]]] = []

    async def captured(sql: str, *args: Any) -> list[dict[str, Any]]:
        sent.append((sql, args))
        return []

    monkeypatch.setattr(audit, "fetch", captured)
    async with db.tenant_transaction(org.id):
        await audit.list_events(audit.AuditFilter(action="member.updated7"), before_id=None, limit=50)
    [(sql, args)] = sent
    for plan in await plans(runtime_conn, org, sql, list(args)):
        assert "audit_events_tenant_action_prefix" in plan and "Seq Scan on audit_events" not in plan, plan


async def test_the_api_tokens_list_reads_a_page_of_its_index_in_either_order(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Newest first or by name (``tokens.service.list_tokens``): each order is one range of
    its own index (migration 0036), no sort over all the organisation's tokens. Planned as
    the runtime role, whose row-level security policy gives the organisation's condition."""
    from tenants.tokens.models import ApiToken

    await owner_conn.execute("VACUUM (ANALYZE) api_tokens")
    for field, index in (("-created_at", "api_tokens_by_created"), ("name", "api_tokens_by_name")):
        direction = "-" if field.startswith("-") else ""
        async with db.tenant_transaction(org.id):
            sql, params = statement(ApiToken.all().order_by(field, f"{direction}id").limit(51))
        for mode in ("force_custom_plan", "force_generic_plan"):
            async with owner_conn.transaction():
                await owner_conn.execute("SET LOCAL ROLE tenantry_app")
                await owner_conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                await owner_conn.execute("SET LOCAL enable_seqscan = off")
                await owner_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
                await owner_conn.execute(f"PREPARE probe AS {sql}")
                args = ", ".join(literal(p) for p in params)
                rows = await owner_conn.fetch(f"EXPLAIN EXECUTE probe({args})")
                await owner_conn.execute("DEALLOCATE probe")
            plan = "\n".join(r[0] for r in rows)
            assert index in plan, plan
            assert "Sort" not in plan, plan


async def test_a_transaction_left_idle_is_ended_so_its_locks_go_with_it(
    runtime_conn: asyncpg.Connection, org: OrgHandle
) -> None:
    """A worker frozen mid-step held its departure's row lock with no limit: the worker
    that took its job over waited on it, renewing the lease, for as long as it lasted."""
    assert await runtime_conn.fetchval("SHOW idle_in_transaction_session_timeout") == "1min"
    async with db.tenant_transaction(org.id):
        row = await db.fetch_one(
            "SELECT current_setting('idle_in_transaction_session_timeout') AS limit"
        )
    assert row == {"limit": "1min"}


async def test_forgetting_kept_id_tokens_reads_only_the_sessions_that_keep_one(
    runtime_conn: asyncpg.Connection, org: OrgHandle
) -> None:
    """Switching off signing out at the provider forgets the kept ID tokens in one
    statement: through their own partial index, not every session of the organisation."""
    from tenants.sessions.models import Session

    async with db.tenant_transaction(org.id):
        sql, params = statement(
            Session.filter(idp_id_token_enc__not_isnull=True).update(idp_id_token_enc=None)
        )
    for plan in await plans(runtime_conn, org, sql, params, seqscan=False):
        assert "sessions_kept_id_tokens" in plan, plan
