"""A real PgBouncer (Debian's ``pgbouncer`` package, installed by scripts/test) in
``pool_mode = transaction`` in front of a PostgreSQL server, for the tests that run the
service through a transaction pooler."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.database import connection_params


@dataclass(frozen=True, slots=True)
class Bouncer:
    port: int
    folder: Path

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_pgbouncer(
    server_url: str, users: Sequence[str], *, pool_size: int = 10
) -> Iterator[Bouncer]:
    """PgBouncer on a free loopback port, forwarding every database to ``server_url``'s
    server (a unix socket folder or a TCP address), trusting ``users`` like the server
    does. Stopped at the end of the block."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    target = connection_params(server_url)
    folder = Path(tempfile.mkdtemp(prefix="tenantry-pgbouncer-"))
    folder.chmod(0o777)  # PgBouncer refuses to run as root: it writes here as another user
    port = _free_port()
    (folder / "users.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={target["host"]} port={target["port"]}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = {pool_size}
server_reset_query =
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # Run as whoever may reach the server: the owner of its socket folder, or nobody.
        host = str(target["host"])
        user = pwd.getpwuid(os.stat(host).st_uid).pw_name if host.startswith("/") else "nobody"
        command[1:1] = ["-u", user]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    bouncer = Bouncer(port, folder)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{bouncer.log()}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer does not listen on {port}:\n{bouncer.log()}")
            time.sleep(0.05)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)
