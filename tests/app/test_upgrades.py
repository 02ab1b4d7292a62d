"""A database in use upgrades: a migration that adds a column to a table with rows gives
the rows a value. Migrations 0027 and 0041 added NOT NULL columns without a default in
the database and stopped the upgrade of every database holding an organisation or an SSO
connection; fresh databases, which the rest of the suite migrates, never saw it."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import pkgutil
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from tortoise.migrations import operations as ops

import migrations.tenants
from app import database

#: Migrations from before any release: no database in use predates them.
BEFORE_ANY_RELEASE = {"0001_initial", "0002_row_level_security", "0003_policies"}

MIGRATE_TO = """
import asyncio, logging, sys
from app import database

logging.basicConfig(level=logging.WARNING)
if len(sys.argv) > 3:
    database.MIGRATION_LOCK_TIMEOUT = sys.argv[3]

async def main(url, target):
    urls = await database.prepare_database(url, app_role="tenantry_app", app_database_url=None)
    print(len(await database.migrate(urls, target=target or None)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def tenant_migrations() -> list[tuple[str, list[ops.Operation]]]:
    found = []
    for info in pkgutil.iter_modules(migrations.tenants.__path__):
        module = importlib.import_module(f"migrations.tenants.{info.name}")
        found.append((info.name, list(module.Migration.operations)))
    return sorted(found)


def test_no_migration_adds_a_column_rows_already_there_cannot_fill() -> None:
    """Tortoise's ``AddField`` gives the database no default: a NOT NULL column through it
    fails on a table with rows. Such columns go through ``base.AddColumnWithDefault``."""
    migrations_found = tenant_migrations()
    assert len(migrations_found) > 40
    unfillable = [
        f"{name}: {op.model_name}.{op.name}"
        for name, operations in migrations_found
        if name not in BEFORE_ANY_RELEASE
        for op in operations
        if type(op) is ops.AddField and not op.field.null
    ]
    assert unfillable == []


async def run_migrate(url: str, target: str = "", *lock_timeout: str, fails: bool = False) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MIGRATE_TO,
        url,
        target,
        *lock_timeout,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    output, _ = await process.communicate()
    assert (process.returncode != 0) == fails, output.decode()[-3000:]
    return output.decode()


#: A value of each column type a row needs where the schema gives none.
FILLERS = {
    "uuid": "gen_random_uuid()",
    "text": "'x'",
    "character varying": "'x'",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "boolean": "false",
    "timestamp with time zone": "now()",
    "date": "current_date",
    "jsonb": "'{}'",
}


async def insert_row(conn: asyncpg.Connection, table: str, given: dict[str, str]) -> None:
    """A row of ``table`` as it is at this point of the migrations: ``given`` columns (SQL
    values) and a filler for every other column that must have a value and has no
    default."""
    needed = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema ="
        " 'public' AND table_name = $1 AND is_nullable = 'NO' AND column_default IS NULL",
        table,
    )
    values = {r["column_name"]: FILLERS[r["data_type"]] for r in needed} | given
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(values.values())})"
    )


@pytest.mark.slow
async def test_a_database_with_an_organisation_and_its_sso_connection_upgrades(
    fresh_database_url: str,
) -> None:
    await run_migrate(fresh_database_url, "tenants.0026_sso_previous")
    org = uuid.uuid4()
    conn = await asyncpg.connect(**database.connection_params(fresh_database_url))
    try:
        await insert_row(conn, "organisations", {"id": f"'{org}'", "slug": "'upgraded'"})
        await insert_row(conn, "sso_connections", {"tenant_id": f"'{org}'"})
    finally:
        await conn.close()
    await run_migrate(fresh_database_url)
    conn = await asyncpg.connect(**database.connection_params(fresh_database_url))
    try:
        row = await conn.fetchrow(
            "SELECT o.policy_notice_days, s.sign_out_at_provider FROM organisations o"
            " JOIN sso_connections s ON s.tenant_id = o.id WHERE o.id = $1",
            org,
        )
        pending = database.pending_migrations_from(
            {r["m"] for r in await conn.fetch("SELECT app || '.' || name AS m FROM tortoise_migrations")}
        )
    finally:
        await conn.close()
    assert (row["policy_notice_days"], row["sign_out_at_provider"]) == (7, False)
    assert pending == []


WAITING_FOR_SESSIONS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted"
    " AND relation = 'public.sessions'::regclass)"
)


@pytest.mark.slow
async def test_a_migration_gives_way_to_a_long_transaction_instead_of_queueing_every_reader(
    fresh_database_url: str,
) -> None:
    """0041 alters the sessions table. Queued behind one long transaction (a report, a
    backup), it held every later reader of sessions, every request, for as long as that
    lasted. It waits for its lock only so long, gives way, and tries again."""
    await run_migrate(fresh_database_url, "tenants.0040_sign_in_detail")
    params = database.connection_params(fresh_database_url)
    report = await asyncpg.connect(**params)
    reader = await asyncpg.connect(**params)
    try:
        await report.execute("BEGIN; LOCK TABLE sessions IN ACCESS SHARE MODE")
        upgrade = asyncio.create_task(run_migrate(fresh_database_url, "", "300ms"))
        # The migration asks for its lock (a process start and 40 migrations away), and
        # gives way.
        for _ in range(200):
            if await reader.fetchval(WAITING_FOR_SESSIONS):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the migration never asked for the sessions table")
        await asyncio.sleep(0.5)
        read = asyncio.get_running_loop().time()
        await asyncio.wait_for(reader.fetchval("SELECT count(*) FROM sessions"), 5)
        assert asyncio.get_running_loop().time() - read < 0.3
        assert not upgrade.done()
        await report.execute("COMMIT")
        output = await asyncio.wait_for(upgrade, 60)
    finally:
        await report.close()
        await reader.close()
    assert "migration tenants.0041_sign_out_at_provider gave way after waiting 300ms" in output
    assert output.strip().splitlines()[-1] == str(
        len(database.pending_migrations_from(set())) - 40
    )


@pytest.mark.slow
async def test_a_failed_migration_is_named_with_what_was_kept_before_it(fresh_database_url: str) -> None:
    """A failed upgrade was an 82-line traceback naming neither the migration that failed
    nor the ten committed before it."""
    await run_migrate(fresh_database_url, "tenants.0039_sign_in_keeps_its_provider")
    conn = await asyncpg.connect(**database.connection_params(fresh_database_url))
    try:
        await conn.execute("ALTER TABLE sso_connections ADD COLUMN sign_out_at_provider int")
    finally:
        await conn.close()
    output = await run_migrate(fresh_database_url, fails=True)
    assert (
        "DatabaseSetupError: migration tenants.0041_sign_out_at_provider failed and was rolled"
        " back, nothing of it kept (" in output
    ), output[-2000:]
    assert "1 applied before it, each kept: tenants.0040_sign_in_detail" in output


def test_a_released_migration_is_never_edited() -> None:
    """A database that applied a migration never applies it again: an edit reaches only
    new databases (0036 gained two indexes after its release, and databases already past
    it never got them). A change goes into a new migration. An edit that cannot change any
    database that applied it (a comment; a fix for databases it failed on, as 0027 and
    0041 got) is made on purpose, with its line in ``migrations/released.sha256``."""
    folder = Path(migrations.tenants.__path__[0])
    released = {
        name: digest
        for digest, name in (
            line.split() for line in (folder.parent / "released.sha256").read_text().splitlines()
        )
    }
    edited = [
        name
        for name, digest in released.items()
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest
    ]
    assert edited == []
    assert sorted(released) == sorted(p.name for p in folder.glob("0*.py"))
