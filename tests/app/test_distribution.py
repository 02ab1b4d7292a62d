"""The precondition for distributing Tenantry by organisation (docs/scaling.md).

Citus (or any sharding by organisation) can co-locate an organisation's rows on one node
only if every tenant table is keyed by ``tenant_id`` first, every foreign key between
tenant tables carries ``tenant_id`` on both sides, and every join between tenant tables
matches ``tenant_id``. The first two are read from the migrated catalogue; the third from
the SQL written in the code, since PostgreSQL cannot say which queries will run.
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]

# Tables without tenant_id, each deliberately global; docs/scaling.md says where each lives
# when the organisations are distributed.
GLOBAL_TABLES = {
    "organisations": "reference table: the slug and domain lookups run before a tenant is known",
    "signing_keys": "reference table: the service's own token-signing keys, read by every node",
    "rate_limit_hits": "reference table: attempts per client address, limited across organisations",
    "tortoise_migrations": "coordinator only: the migration history",
}


async def tenant_tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    )
    return {r["relname"] for r in rows}


async def test_every_table_is_a_tenant_table_under_forced_row_security_or_named_global(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(
        "SELECT c.relname, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    )
    tables = await tenant_tables(owner_conn)
    unclassified = sorted(r["relname"] for r in rows if r["relname"] not in tables)
    assert [t for t in unclassified if t not in GLOBAL_TABLES] == []
    assert (
        sorted(
            r["relname"] for r in rows if r["relname"] in tables and not r["relforcerowsecurity"]
        )
        == []
    )


async def test_every_tenant_table_has_a_primary_key_leading_with_tenant_id(
    owner_conn: asyncpg.Connection,
) -> None:
    tables = await tenant_tables(owner_conn)
    assert len(tables) >= 40
    rows = await owner_conn.fetch(
        """SELECT c.relname AS table, con.contype, (
                 SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = con.conrelid AND a.attnum = con.conkey[1]) AS first_column
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
           WHERE con.contype = 'p' AND c.relname = ANY($1::text[])""",
        sorted(tables),
    )
    keyed = {r["table"]: r["first_column"] for r in rows}
    assert sorted(tables - keyed.keys()) == [], "tenant tables without a primary key"
    assert {t: c for t, c in keyed.items() if c != "tenant_id"} == {}


async def test_every_foreign_key_between_tenant_tables_leads_with_tenant_id_on_both_sides(
    owner_conn: asyncpg.Connection,
) -> None:
    tables = await tenant_tables(owner_conn)
    rows = await owner_conn.fetch(
        """SELECT con.conname, src.relname AS source, dst.relname AS target,
                  (SELECT a.attname FROM pg_attribute a
                   WHERE a.attrelid = con.conrelid AND a.attnum = con.conkey[1]) AS source_first,
                  (SELECT a.attname FROM pg_attribute a
                   WHERE a.attrelid = con.confrelid AND a.attnum = con.confkey[1]) AS target_first
           FROM pg_constraint con
           JOIN pg_class src ON src.oid = con.conrelid
           JOIN pg_class dst ON dst.oid = con.confrelid
           WHERE con.contype = 'f'"""
    )
    between = [r for r in rows if r["source"] in tables and r["target"] in tables]
    assert between, "expected composite foreign keys between tenant tables"
    bad = [
        f"{r['conname']}: {r['source']}({r['source_first']}…) → {r['target']}({r['target_first']}…)"
        for r in between
        if (r["source_first"], r["target_first"]) != ("tenant_id", "tenant_id")
    ]
    assert bad == []
    # A tenant table may point at organisations (a reference table) only by tenant_id.
    to_reference = [
        r["conname"]
        for r in rows
        if r["source"] in tables
        and r["target"] == "organisations"
        and r["source_first"] != "tenant_id"
    ]
    assert to_reference == []


JOIN = re.compile(
    r"\bJOIN\s+(?P<table>[a-z_]+)(?:\s+(?:AS\s+)?(?P<alias>[a-z_][a-z0-9_]*))?\s+"
    r"(?P<kind>ON|USING)\b(?P<condition>.*?)(?=\bJOIN\b|\bWHERE\b|\bGROUP\s+BY\b|\bORDER\s+BY\b"
    r"|\bLIMIT\b|\bRETURNING\b|\bUNION\b|\)\s*(?:SELECT|,|$)|\bON\s+CONFLICT\b|;|\"\"\"|$)",
    re.IGNORECASE | re.DOTALL,
)


def sql_sources() -> list[Path]:
    return sorted(
        p
        for folder in ("app", "tenants", "policies", "migrations")
        for p in (ROOT / folder).rglob("*.py")
    )


def joins_without_tenant(text: str, tables: set[str]) -> list[str]:
    """Joins to a tenant table whose condition does not match tenant_id (a heuristic over
    the SQL text: conditions are read up to the next clause)."""
    found = []
    for match in JOIN.finditer(text):
        table = match["table"].lower()
        if table not in tables:
            continue
        condition = match["condition"]
        if "tenant_id" not in condition:
            line = text.count("\n", 0, match.start()) + 1
            found.append(
                f"line {line}: JOIN {table} {match['kind']} {' '.join(condition.split())[:80]}"
            )
    return found


# Known joins without tenant_id, each with the reason it is safe to keep for now. Applied
# migrations are never edited: a later migration that redefines the function removes the
# entry (and this test then insists the entry goes).
KNOWN = {
    # The batch access check joins its input rows (a CTE, no tenant_id) to members; every
    # input row belongs to the function's one organisation, so a distributed planner sees
    # the tenant through the function's argument, not through this join.
    "migrations/tenants/0012_access_check_batch.py": ["JOIN members ON mm.id = q.member_id"],
}


async def test_no_query_joins_tenant_tables_without_matching_tenant_id(
    owner_conn: asyncpg.Connection,
) -> None:
    tables = await tenant_tables(owner_conn)
    offenders: dict[str, list[str]] = {}
    for path in sql_sources():
        name = str(path.relative_to(ROOT))
        found = [
            f
            for f in joins_without_tenant(path.read_text(), tables)
            if not any(known in f for known in KNOWN.get(name, []))
        ]
        if found:
            offenders[name] = found
    assert offenders == {}
    for name, known in KNOWN.items():  # a stale exception would hide a new offender
        text = (ROOT / name).read_text() if (ROOT / name).exists() else ""
        assert all(any(k in f for f in joins_without_tenant(text, tables)) for k in known), name


def test_the_join_check_sees_a_join_that_forgets_tenant_id() -> None:
    tables = {"members", "units"}
    sql = "SELECT m.id FROM members m JOIN units u ON u.id = m.unit_id WHERE m.id = $1"
    assert joins_without_tenant(sql, tables) != []
    good = (
        "SELECT m.id FROM members m JOIN units u ON u.tenant_id = m.tenant_id "
        "AND u.id = m.unit_id WHERE m.id = $1"
    )
    assert joins_without_tenant(good, tables) == []
    using = "SELECT 1 FROM members m JOIN units u USING (tenant_id, id)"
    assert joins_without_tenant(using, tables) == []
