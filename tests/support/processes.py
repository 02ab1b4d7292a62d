"""Starting real ``tenantry`` processes (serve, worker) against the test session's
database, for tests of what happens between processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from app.database import DatabaseUrls


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tenantry_env(
    urls: DatabaseUrls, secret_key: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of a process on ``urls``: development mode, a small pool, and no
    embedded worker (the session's tests run jobs themselves; a server must not take
    them), unless ``extra`` says otherwise."""
    env = {
        **os.environ,
        "DATABASE_URL": urls.admin,
        "APP_DATABASE_URL": urls.app,
        "TENANTRY_SECRET_KEY": secret_key,
        "TENANTRY_DATA_DIR": str(data_dir),
        "TENANTRY_ENV": "development",
        "DATABASE_POOL_SIZE": "3",
        "TENANTRY_EMBEDDED_WORKER": "false",
        **extra,
    }
    env.pop("TENANTRY_PUBLIC_URL", None)
    return env


def tenantry_command() -> list[str]:
    """The installed ``tenantry`` command, or the CLI module run by this interpreter."""
    found = shutil.which("tenantry")
    return [found] if found else [sys.executable, "-m", "app.cli"]


def start_tenantry(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``tenantry ARGS`` with its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*tenantry_command(), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


#: Whether any job is running, or queued and due (``next_job_due()``, which the workers
#: themselves sleep on): a worker process still has work.
JOBS_BUSY_SQL = (
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'running') "
    "OR coalesce(next_job_due() <= now(), false)"
)


async def wait_for_workers_idle(conn: asyncpg.Connection, *, within: float = 60.0) -> None:
    """Wait until worker processes that outlive a test have finished what it queued (a
    policy change's webhook deliveries, say). The next test's cleaning empties the tables
    under a running job otherwise, and the job cut in half logs its traceback, which the
    processes' teardown rightly counts as a failure."""
    deadline = time.monotonic() + within
    while await conn.fetchval(JOBS_BUSY_SQL):
        assert time.monotonic() < deadline, f"worker processes still busy after {within} s"
        await asyncio.sleep(0.05)
