"""``tenantry migrate`` killed at any moment, or run by several nodes at once, leaves a
database the next ``migrate`` finishes: each migration records itself in its own
transaction, and one migrate (and one preparation) runs at a time per database."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest

from app import database

pytestmark = pytest.mark.slow

#: Prepares and migrates the database of argv[1] (an admin URL). With argv[2] = N, the
#: process dies (as by SIGKILL: no cleanup, no rollback of what committed) at the N-th
#: moment tortoise records a migration it has committed: the gap between the two.
MIGRATE = """
import asyncio, os, sys
from app import database

calls = 0
die_at = int(sys.argv[2])
record = database.MigrationRecord.record_applied

async def record_or_die(self, app, name):
    global calls
    calls += 1
    if calls == die_at:
        os._exit(9)
    await record(self, app, name)

database.MigrationRecord.record_applied = record_or_die

async def main(url):
    urls = await database.prepare_database(url, app_role="tenantry_app", app_database_url=None)
    print(len(await database.migrate(urls)))

asyncio.run(main(sys.argv[1]))
"""


async def run_migrate(url: str, die_at: int = 0) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MIGRATE,
        url,
        str(die_at),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def recorded(url: str) -> list[str]:
    conn = await asyncpg.connect(**database.connection_params(url))
    try:
        rows = await conn.fetch("SELECT app || '.' || name AS m FROM tortoise_migrations")
    finally:
        await conn.close()
    return sorted(r["m"] for r in rows)


async def test_a_migrate_killed_between_a_migration_and_its_record_is_finished_by_the_next(
    fresh_database_url: str,
) -> None:
    """Tortoise records a migration after committing it; dying in between used to leave
    the schema changed and the record missing, and every later migrate failed on
    "already exists"."""
    code, output = await run_migrate(fresh_database_url, die_at=5)
    assert code == 9, output[-2000:]
    assert len(await recorded(fresh_database_url)) == 5  # the fifth recorded itself as it committed
    code, output = await run_migrate(fresh_database_url)
    assert code == 0, output[-3000:]
    names = await recorded(fresh_database_url)
    assert len(names) == len(set(names)) == len(database.pending_migrations_from(set()))
    assert database.pending_migrations_from(set(names)) == []


async def test_migrates_started_together_take_turns_and_both_succeed(fresh_database_url: str) -> None:
    """Nodes started at once with --migrate: one prepares and migrates, the others wait and
    find nothing to do (they used to fail on a duplicate database or on "tuple concurrently
    updated")."""
    results = await asyncio.gather(*(run_migrate(fresh_database_url) for _ in range(3)))
    assert [code for code, _ in results] == [0, 0, 0], [o[-2000:] for _, o in results]
    applied = sorted(int(output.strip().splitlines()[-1]) for _, output in results)
    assert applied[:2] == [0, 0] and applied[2] == len(database.pending_migrations_from(set()))
    names = await recorded(fresh_database_url)
    assert len(names) == len(set(names))
