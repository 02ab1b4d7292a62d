"""Starting on a database that is not ready: a service (or command) that does not migrate
checks first that the database answers and holds every migration, and stops with what to
do, rather than serving 500s and logging failed job rounds forever."""

from __future__ import annotations

import re
import uuid

import asyncpg
import pytest

from app import database
from app.database import DatabaseSetupError, DatabaseUrls
from app.runtime import ready_database
from app.settings import Settings


async def test_a_database_without_the_schema_is_refused_naming_the_command_to_run(
    admin_server_url: str,
) -> None:
    name = f"tenantry_unmigrated_{uuid.uuid4().hex[:8]}"
    server = await asyncpg.connect(
        **database.connection_params(database.with_database(admin_server_url, "postgres"))
    )
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        url = database.with_database(admin_server_url, name)
        with pytest.raises(DatabaseSetupError) as refused:
            await ready_database(Settings.from_env({}), url, migrate=False)
        message = str(refused.value)
        assert re.search(r"lacks \d+ migrations \(tenants\.0001_\w+, .* and \d+ more\)", message)
        assert "run `tenantry migrate` first, or start with --migrate" in message
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.close()


async def test_a_current_database_passes_and_an_unreachable_one_is_named_without_its_password(
    database_urls: DatabaseUrls,
) -> None:
    await database.check_current(database_urls.admin)  # the tests' own, migrated
    with pytest.raises(DatabaseSetupError) as refused:
        await database.check_current("postgresql://tenantry:s3cr3t@127.0.0.1:1/tenantry")
    message = str(refused.value)
    assert message.startswith("cannot connect to the database at postgresql://tenantry:")
    assert "s3cr3t" not in message and "127.0.0.1:1/tenantry" in message
