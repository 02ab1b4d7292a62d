"""The personal-data map covers the schema: every text-like column of every tenant table in
the migrated database is classified, and the map names no column that does not exist."""

from __future__ import annotations

from datetime import date

import asyncpg

from tenants.privacy import datamap

#: Types that can hold a person's data.
TEXT_TYPES = ("text", "character varying", "jsonb", "json", "inet", "bytea", "ARRAY")

#: A partition's columns are its parent's (the time-partitioned tables of migration 0022),
#: classified under the parent's name.
COLUMNS_SQL = """
SELECT c.table_name, c.column_name
  FROM information_schema.columns c
  JOIN information_schema.columns t
    ON t.table_schema = c.table_schema AND t.table_name = c.table_name
   AND t.column_name = 'tenant_id'
  JOIN pg_class r ON r.oid = format('%I.%I', c.table_schema, c.table_name)::regclass
 WHERE c.table_schema = 'public' AND c.data_type = ANY($1::text[]) AND NOT r.relispartition
 ORDER BY 1, 2
"""


async def test_every_text_jsonb_bytea_and_inet_column_of_a_tenant_table_is_classified(
    owner_conn: asyncpg.Connection,
) -> None:
    rows = await owner_conn.fetch(COLUMNS_SQL, list(TEXT_TYPES))
    assert len(rows) > 100
    missing = [f"{r['table_name']}.{r['column_name']}" for r in rows
               if not datamap.classified(r["table_name"], r["column_name"])]
    assert missing == [], f"classify these in tenants/privacy/datamap.py: {missing}"


async def test_the_map_names_only_columns_that_exist(owner_conn: asyncpg.Connection) -> None:
    rows = await owner_conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    existing = {(r["table_name"], r["column_name"]) for r in rows}
    named = {(t.name, c) for t in datamap.TABLES for c in (*t.personal, *t.not_personal)}
    assert sorted(named - existing) == []


def test_every_kept_step_states_its_reason_basis_and_review() -> None:
    for table in datamap.personal_tables():
        assert table.erase, table.name
        assert table.export or table.export_note, table.name
        for step in table.erase:
            if step.action is datamap.Action.KEEP:
                assert step.reason and step.basis, table.name
                assert step.review_days or step.review_years, table.name
            if step.action is datamap.Action.PSEUDONYMISE:
                assert step.set, table.name


def test_years_of_retention_are_calendar_years_and_a_29_february_becomes_the_28th() -> None:
    """3 years from 2026-12-07 were 2029-12-06 and 6 years 2032-12-05 (N x 365 days)."""
    three, six = datamap.keep("r", "b", datamap.Years(3)), datamap.keep("r", "b", datamap.Years(6))
    assert three.review_on(date(2026, 12, 7)) == date(2029, 12, 7)
    assert six.review_on(date(2026, 12, 7)) == date(2032, 12, 7)
    assert datamap.keep("r", "b", datamap.Years(1)).review_on(date(2028, 2, 29)) == date(2029, 2, 28)
    assert datamap.keep("r", "b", datamap.Years(4)).review_on(date(2028, 2, 29)) == date(2032, 2, 29)
    assert datamap.keep("r", "b", 30).review_on(date(2026, 12, 7)) == date(2027, 1, 6)


def test_held_content_is_reviewed_on_its_holds_latest_review_date() -> None:
    """Kept under legal hold, the evidence gave today + 90 days, not the hold's own date."""
    (held,) = [
        step
        for table in datamap.personal_tables()
        if table.name == "content_items"
        for step in table.erase
        if step.where == "legal_hold"
    ]
    assert held.review_column == "hold_review_on"
    assert held.review_on(date(2026, 12, 7), date(2027, 6, 30)) == date(2027, 6, 30)
    # A hold placed before review dates were asked for has none: the map's 90 days.
    assert held.review_on(date(2026, 12, 7), None) == date(2027, 3, 7)


def test_a_column_missing_from_the_map_is_reported() -> None:
    assert datamap.classified("members", "email")
    assert not datamap.classified("members", "favourite_colour")
    assert not datamap.classified("a_new_table", "notes")


def test_the_export_bundle_has_a_file_for_every_exportable_table_and_no_other() -> None:
    from tenants.requests import bundle

    assert set(datamap.export_sources()) == set(bundle.OWN_FILES)
