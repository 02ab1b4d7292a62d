"""Starting on a database that is not ready: a service (or command) that does not migrate
checks first that the database answers and holds every migration, and stops with what to
do, rather than serving 500s and logging failed job rounds forever."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from app import database
from app.database import DatabaseSetupError, DatabaseUrls
from app.runtime import ready_database
from app.settings import Settings
from tests.support.processes import free_port, start_tenantry, tenantry_command


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
        # The worker has no --migrate: the way named is one every command can take.
        assert "run `tenantry migrate` first (or start the server with `tenantry serve --migrate`)" in message
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


@pytest.mark.slow
@pytest.mark.parametrize("command", ["worker", "serve"])
async def test_a_process_started_before_its_database_answers_waits_for_it(
    tmp_path: Path, command: str
) -> None:
    """A worker that exited at once when its database was not up yet was restarted in a
    loop by its process manager (docs/operations.md promised it waits), and ``serve``
    stayed down until someone restarted it: each logs a warning per try, keeps trying,
    and stops on SIGTERM."""
    port = free_port()  # nothing listens there
    url = f"postgresql://tenantry:s3cr3t@127.0.0.1:{port}/tenantry"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TENANTRY_SECRET_KEY": "k" * 43,
        "TENANTRY_DATA_DIR": str(tmp_path),
        "TENANTRY_ENV": "development",
        "TENANTRY_LOG_JSON": "true",
    }
    log = tmp_path / f"{command}.log"
    arguments = ["--name", "early"] if command == "worker" else ["--port", str(free_port())]
    worker = start_tenantry([command, *arguments], env, log)
    try:
        deadline = time.monotonic() + 20
        while log.read_text().count("database unavailable") < 2:
            assert worker.poll() is None, f"{command} exited:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        assert "s3cr3t" not in log.read_text() and "Traceback" not in log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        exited = await asyncio.to_thread(worker.wait, 20)
    assert exited in (0, 1, -signal.SIGTERM, 128 + signal.SIGTERM), log.read_text()[-2000:]


async def test_a_runtime_role_that_cannot_connect_is_named_at_start_without_its_password(
    database_urls: DatabaseUrls,
) -> None:
    """A wrong APP_DATABASE_URL was a traceback from inside the web server's start (and a
    traceback per loop in a worker): it is named, like the admin URL, before anything
    starts."""
    parts = urlsplit(database_urls.app)
    wrong = urlunsplit(parts._replace(netloc=f"nobody_here:s3cr3t@{parts.netloc.split('@')[-1]}"))
    settings = Settings.from_env({"APP_DATABASE_URL": wrong})
    with pytest.raises(DatabaseSetupError) as refused:
        await ready_database(settings, database_urls.admin, migrate=False)
    message = str(refused.value)
    assert message.startswith("cannot connect as the runtime role at postgresql://nobody_here:***@")
    assert "APP_DATABASE_URL" in message and "s3cr3t" not in message
    # The admin role is no runtime role either: refused as unsafe, in words.
    settings = Settings.from_env({"APP_DATABASE_URL": database_urls.admin})
    with pytest.raises(DatabaseSetupError, match="superuser"):
        await ready_database(settings, database_urls.admin, migrate=False)


def test_a_command_on_an_unreachable_database_says_so_in_one_line_without_its_password(
    tmp_path: Path,
) -> None:
    """A journal showed one error as three lines (wrapped at 80 columns), and a worker's
    health check added "Exit: 1" to it."""
    url = f"postgresql://tenantry:s3cr3t@127.0.0.1:{free_port()}/tenantry-with-a-long-name"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TENANTRY_SECRET_KEY": "k" * 43,
        "TENANTRY_DATA_DIR": str(tmp_path),
        "TENANTRY_ENV": "development",
        "COLUMNS": "60",
    }
    for args in (["audit", "verify", "--org", "nowhere"], ["worker", "--health"]):
        done = subprocess.run(
            [*tenantry_command(), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, (args, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines[0].startswith("error: cannot connect to the database at "), (args, lines)
        assert "tenantry-with-a-long-name" in lines[0], lines  # not cut onto a second line
        assert "s3cr3t" not in done.stderr + done.stdout and "Traceback" not in done.stderr
        assert "Exit" not in done.stdout + done.stderr, (args, done.stdout, done.stderr)
