"""Tenant isolation on every /v1 route and in the database underneath.

The routes come from the OpenAPI document the app serves, so a new route is covered
without touching this file. Organisation A (alpha) probes organisation B (bravo): every
probe is a request that B itself can make successfully (checked), so a 404 to A means the
row was out of A's reach, not that the request was malformed.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from app import database
from app.database import DatabaseUrls
from tenants.audit.sealer import seal_all
from tests.conftest import TENANT_TABLES, OrgHandle, row_counts
from tests.support.api_schema import (
    JSON,
    World,
    assert_problem,
    build_world,
    non_null,
    operations,
    send,
    served_document,
)

pytestmark = pytest.mark.usefixtures("client")


async def snapshot(org: OrgHandle, document: JSON, world: World) -> dict[str, Any]:
    """Everything ``org`` can read about itself through the API, read with its own token."""
    seen: dict[str, Any] = {}
    for op in operations(document):
        if op.method != "GET":
            continue
        url = world.url(op)
        response = await org.get(url, params=world.params(op))
        seen[url] = (response.status_code, response.text)
    return seen


@pytest.mark.slow
async def test_every_route_answers_404_to_another_organisations_ids_and_changes_nothing(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    document = await served_document(alpha.client)
    probed = [op for op in operations(document) if op.path_params]
    assert len(probed) >= 15, [str(op) for op in probed]
    failures: list[str] = []
    world: World | None = None
    # What bravo reads and the row counts before a probe: after a read (the probe and its
    # control request), what was read after it is what the next probe starts from.
    before: dict[str, Any] | None = None
    counts: dict[str, int] | None = None
    for op in probed:
        if world is None:
            # Fresh after every write: the owner's control request may change or delete what
            # the next probe needs. A read leaves it as it was, so reads share one.
            world = await build_world(bravo)
            before = None
        # Seal now: the app's sealer would otherwise chain these events between the two
        # snapshots (on a loaded machine), which reads as bravo's data changing.
        await seal_all(wait=True)
        url, body = world.url(op), world.body(op)
        if before is None or counts is None:
            counts = await row_counts(owner_conn)
            before = await snapshot(bravo, document, world)

        response = await send(alpha, op, url, body, params=world.params(op))

        if (
            response.status_code != 404
            or response.headers.get("content-type") != "application/problem+json"
        ):
            failures.append(f"{op}: {response.status_code} {response.text[:300]}")
        else:
            assert_problem(response, 404)
        counts_after = await row_counts(owner_conn)
        if counts_after != counts:
            failures.append(f"{op}: row counts changed")
        after = await snapshot(bravo, document, world)
        if after != before:
            changed = {u: (before.get(u), after.get(u)) for u in before.keys() | after.keys()
                       if before.get(u) != after.get(u)}
            failures.append(f"{op}: bravo's data changed: {str(changed)[:1500]}")
        control = await send(
            bravo, op, url, body, params=world.params(op), headers=world.headers(op)
        )
        if not 200 <= control.status_code < 300:
            failures.append(
                f"{op}: the probe is not a request its owner can make: {control.status_code} {control.text[:300]}"
            )
        if op.is_write:
            world = None
        else:
            before, counts = after, counts_after
    assert not failures, "\n".join(failures)


async def test_routes_with_several_ids_refuse_a_mix_of_own_and_foreign_ids(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    document = await served_document(alpha.client)
    own, foreign = await build_world(alpha), await build_world(bravo)
    mixed = [op for op in operations(document) if len(op.path_params) > 1]
    assert mixed, "expected at least one route with two ids (group membership)"
    for op in mixed:
        for name in op.path_params:
            ids = {**own.path_ids(op), name: foreign.path_ids(op)[name]}
            counts = await row_counts(owner_conn)
            before = (
                await snapshot(alpha, document, own),
                await snapshot(bravo, document, foreign),
            )

            response = await send(alpha, op, own.url(op, ids), own.body(op), params=own.params(op))

            assert_problem(response, 404)
            assert await row_counts(owner_conn) == counts, op
            assert (
                await snapshot(alpha, document, own),
                await snapshot(bravo, document, foreign),
            ) == before, op


async def test_list_routes_show_none_of_another_organisations_rows(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    alpha, bravo = two_orgs
    document = await served_document(alpha.client)
    own, foreign = await build_world(alpha), await build_world(bravo)
    lists = [op for op in operations(document) if op.is_list]
    assert {op.path for op in lists} >= {
        "/v1/units",
        "/v1/members",
        "/v1/groups",
        "/v1/products",
        "/v1/audit-events",
    }
    for op in lists:
        response = await alpha.get(op.path, params=own.params(op))
        assert response.status_code == 200, (op, response.text)
        assert any(i in response.text for i in own.markers), (
            f"{op} shows none of alpha's own rows either"
        )
        leaked = [i for i in foreign.markers if i in response.text]
        assert not leaked, f"{op} shows bravo's ids {leaked}"


async def test_list_filters_naming_another_organisations_ids_reveal_nothing(
    two_orgs: tuple[OrgHandle, OrgHandle],
) -> None:
    alpha, bravo = two_orgs
    document = await served_document(alpha.client)
    await build_world(alpha)
    foreign = await build_world(bravo)
    checked = 0
    for op in operations(document):
        if not op.is_list:
            continue
        for param in op.query_params:
            schema = non_null(document, param["schema"])
            if schema.get("format") != "uuid" and not param["name"].endswith("_id"):
                continue
            for foreign_id in sorted(foreign.ids):
                response = await alpha.get(op.path, params={param["name"]: foreign_id})
                checked += 1
                if response.status_code == 404:
                    assert_problem(response, 404)
                    continue
                assert response.status_code == 200, (op, param["name"], response.text)
                assert response.json()["items"] == [], (op, param["name"], response.text)
    assert checked >= 50


# --- the database underneath: row-level security as the runtime role -----------------------


#: Tables the API fills for every organisation with a World: the reads below must see rows there.
CORE_TABLES = (
    "organisations",
    "units",
    "members",
    "groups",
    "group_memberships",
    "products",
    "product_accounts",
    "api_tokens",
    "audit_heads",
    "audit_events",
)


async def tenant_tables(conn: asyncpg.Connection) -> dict[str, str]:
    """Every table holding organisation data → the column that names the organisation.
    A partition is part of its parent (reached only through it, see
    ``test_partitions_are_reached_only_through_their_parent``), not a table of its own."""
    rows = await conn.fetch(
        "SELECT c.table_name FROM information_schema.columns c "
        "JOIN pg_class r ON r.oid = format('%I.%I', c.table_schema, c.table_name)::regclass "
        "WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' "
        "AND NOT r.relispartition ORDER BY c.table_name"
    )
    tables = {r["table_name"]: "tenant_id" for r in rows}
    tables["organisations"] = "id"
    return tables


@pytest.fixture
async def runtime_conn(database_urls: DatabaseUrls, client: Any) -> Any:
    """A raw connection as the role the service runs as (owns nothing, no BYPASSRLS)."""
    conn = await asyncpg.connect(**database.connection_params(database_urls.app))
    yield conn
    await conn.close()


async def set_tenant(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))


async def execute_as(conn: asyncpg.Connection, org_id: uuid.UUID, sql: str, *args: Any) -> str:
    """Run ``sql`` in one transaction bound to ``org_id``, as the service does."""
    async with conn.transaction():
        await set_tenant(conn, org_id)
        status: str = await conn.execute(sql, *args)
    return status


async def test_runtime_role_reads_only_the_organisation_set_in_its_transaction(
    two_orgs: tuple[OrgHandle, OrgHandle],
    owner_conn: asyncpg.Connection,
    runtime_conn: asyncpg.Connection,
) -> None:
    alpha, bravo = two_orgs
    await build_world(alpha)
    await build_world(bravo)
    await seal_all(wait=True)  # or the app's sealer may move audit rows between two reads
    tables = await tenant_tables(owner_conn)
    assert await runtime_conn.fetchval("SELECT current_user") != await owner_conn.fetchval(
        "SELECT current_user"
    )
    filled = set()
    for table, column in tables.items():
        expected = await owner_conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE {column} = $1", alpha.id
        )
        async with runtime_conn.transaction():
            await set_tenant(runtime_conn, alpha.id)
            rows = await runtime_conn.fetch(f"SELECT * FROM {table}")  # no filter on purpose
        assert len(rows) == expected, table
        assert {r[column] for r in rows} <= {alpha.id}, table
        if rows:
            filled.add(table)
    assert filled >= set(CORE_TABLES), (
        f"alpha has no rows in {set(CORE_TABLES) - filled}; the check proves nothing there"
    )


async def test_runtime_role_reads_nothing_when_no_organisation_is_set(
    two_orgs: tuple[OrgHandle, OrgHandle],
    owner_conn: asyncpg.Connection,
    runtime_conn: asyncpg.Connection,
) -> None:
    alpha, _ = two_orgs
    tables = await tenant_tables(owner_conn)
    for table in tables:
        assert await runtime_conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    # Once a transaction-local setting has ended the connection reports '' rather than NULL.
    async with runtime_conn.transaction():
        await set_tenant(runtime_conn, alpha.id)
        assert await runtime_conn.fetchval("SELECT count(*) FROM units") == 1
    assert await runtime_conn.fetchval("SELECT current_setting('app.tenant_id', true)") == ""
    for table in tables:
        assert await runtime_conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_runtime_role_cannot_write_rows_of_another_organisation(
    two_orgs: tuple[OrgHandle, OrgHandle],
    owner_conn: asyncpg.Connection,
    runtime_conn: asyncpg.Connection,
) -> None:
    alpha, bravo = two_orgs
    await build_world(alpha)
    theirs = await build_world(bravo)
    counts = await row_counts(owner_conn)
    insert = (
        "INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status, created_at, updated_at) "
        "VALUES ($1, $2, 'intruder@bravo.example', 'Intruder', $3, '[]', 'active', now(), now())"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await execute_as(runtime_conn, alpha.id, insert, uuid.uuid4(), bravo.id, bravo.root_unit_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await execute_as(runtime_conn, alpha.id, "UPDATE groups SET tenant_id = $1", bravo.id)
    async with runtime_conn.transaction():
        await set_tenant(runtime_conn, alpha.id)
        updated = await runtime_conn.execute(
            "UPDATE members SET name = 'hijacked' WHERE id = $1", uuid.UUID(theirs.member["id"])
        )
        deleted = await runtime_conn.execute(
            "DELETE FROM group_memberships WHERE member_id = $1", uuid.UUID(theirs.member["id"])
        )
    assert (updated, deleted) == ("UPDATE 0", "DELETE 0")
    assert await row_counts(owner_conn) == counts
    assert (
        await owner_conn.fetchval(
            "SELECT name FROM members WHERE id = $1", uuid.UUID(theirs.member["id"])
        )
        == "Test Member"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_runtime_role_cannot_rewrite_the_audit_log(
    statement: str, org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    events = await owner_conn.fetch(
        "SELECT id, action, after FROM audit_events WHERE tenant_id = $1 ORDER BY id", org.id
    )
    assert events
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await execute_as(runtime_conn, org.id, statement)
    assert (
        await owner_conn.fetch(
            "SELECT id, action, after FROM audit_events WHERE tenant_id = $1 ORDER BY id", org.id
        )
        == events
    )


async def test_rows_cannot_reference_another_organisations_rows_even_in_raw_sql(
    two_orgs: tuple[OrgHandle, OrgHandle],
    owner_conn: asyncpg.Connection,
    runtime_conn: asyncpg.Connection,
) -> None:
    alpha, bravo = two_orgs
    ours, theirs = await build_world(alpha), await build_world(bravo)
    counts = await row_counts(owner_conn)
    member = uuid.UUID(ours.member["id"])
    attempts = [
        ("UPDATE members SET unit_id = $1 WHERE id = $2", [uuid.UUID(theirs.unit["id"]), member]),
        (
            "UPDATE members SET manager_id = $1 WHERE id = $2",
            [uuid.UUID(theirs.member["id"]), member],
        ),
        (
            "INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status, created_at, updated_at) "
            "VALUES ($1, $2, 'stray@alpha.example', 'Stray', $3, '[]', 'active', now(), now())",
            [uuid.uuid4(), alpha.id, bravo.root_unit_id],
        ),
        (
            "INSERT INTO group_memberships (id, tenant_id, group_id, member_id, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, now(), now())",
            [uuid.uuid4(), alpha.id, uuid.UUID(ours.group["id"]), uuid.UUID(theirs.member["id"])],
        ),
        (
            "INSERT INTO product_accounts (id, tenant_id, member_id, product_id, status, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, 'assigned', now(), now())",
            [uuid.uuid4(), alpha.id, member, uuid.UUID(theirs.spare_product["id"])],
        ),
        (
            "UPDATE units SET parent_id = $1 WHERE id = $2",
            [uuid.UUID(theirs.unit["id"]), uuid.UUID(ours.unit["id"])],
        ),
    ]
    for sql, args in attempts:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await execute_as(runtime_conn, alpha.id, sql, *args)
    assert await row_counts(owner_conn) == counts


async def test_every_tenant_table_has_forced_row_level_security_with_a_policy(
    owner_conn: asyncpg.Connection,
) -> None:
    tables = await tenant_tables(owner_conn)
    assert len(tables) >= 10, tables
    rows = await owner_conn.fetch(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policies p
                 WHERE p.schemaname = 'public' AND p.tablename = c.relname) AS policies
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($1::text[])
        """,
        list(tables),
    )
    found = {
        r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"], r["policies"] > 0)
        for r in rows
    }
    assert set(found) == set(tables)
    unsafe = {table: flags for table, flags in found.items() if flags != (True, True, True)}
    assert not unsafe, f"(enabled, forced, has a policy) is not all true for {unsafe}"


async def test_partitions_are_reached_only_through_their_parent(
    owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    """Row-level security lives on a partitioned table, not on its partitions: the
    runtime role has no privilege on any partition, so it reads and writes them only
    through the parent and its policy."""
    partitions = [r["relname"] for r in await owner_conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relispartition "
        "AND p.relrowsecurity AND p.relforcerowsecurity")]
    assert len(partitions) >= 6
    privileged = [
        name for name in partitions
        if await runtime_conn.fetchval(
            "SELECT has_table_privilege($1, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')", name)
    ]
    assert privileged == []


async def test_the_test_fixtures_clean_and_count_every_tenant_table(
    owner_conn: asyncpg.Connection,
) -> None:
    """``clean_db`` and ``row_counts`` (tests/conftest.py) must know every tenant table, or
    'nothing was written' assertions miss a table and tests leak rows into each other."""
    assert set(await tenant_tables(owner_conn)) <= set(TENANT_TABLES)
