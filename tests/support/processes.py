"""Starting real ``tenantry`` processes (serve, worker) against the test session's
database, for tests of what happens between processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

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
