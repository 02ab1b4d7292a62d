"""The embedded PostgreSQL lives exactly as long as the Tenantry processes using it: real
``tenantry serve`` processes on a data folder of their own, stopped with Ctrl-C (SIGINT),
SIGTERM, or killed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.database import process_identity

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """One ``tenantry serve`` process on ``data_dir``'s embedded server."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "APP_DATABASE_URL")}
        env.update({
            "TENANTRY_DATA_DIR": str(data_dir), "TENANTRY_PORT": str(self.port),
            "TENANTRY_SECRET_KEY": "embedded-test-" + "k" * 40, "LOG_FORMAT": "console",
            "TENANTRY_EMBEDDED_WORKER": "true",
        })
        found = shutil.which("tenantry")
        command = [found] if found else [sys.executable, "-m", "app.cli"]
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command, "serve"], env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT)

    def wait_ready(self, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail("serve did not become ready:\n" + self.log.read_text()[-3000:])

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


def postmaster(data_dir: Path) -> int | None:
    """The pid of the embedded server's postmaster if it runs, else None."""
    pid_file = data_dir / "postgres" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if process_identity(pid) else None


def gone_soon(data_dir: Path, pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not process_identity(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def shared_data_dir() -> Iterator[Path]:
    """One data folder for the module (the first start creates and migrates it, later
    ones only start the server). Not under pytest's basetemp: pytest resets its folder to
    0700 when any session starts, which would lock the server's own user out."""
    folder = Path(tempfile.mkdtemp(prefix="tenantry-embedded-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def data_dir(shared_data_dir: Path) -> Iterator[Path]:
    assert postmaster(shared_data_dir) is None  # each test starts with the server stopped
    yield shared_data_dir
    pid = postmaster(shared_data_dir)
    if pid is not None:  # a failed test must not leave a server behind
        os.kill(pid, signal.SIGQUIT)
        gone_soon(shared_data_dir, pid)


def test_ctrl_c_on_serve_stops_the_embedded_server(data_dir: Path, tmp_path: Path) -> None:
    serve = Serve(data_dir, tmp_path / "serve.log")
    serve.wait_ready()
    pid = postmaster(data_dir)
    assert pid is not None
    serve.stop(signal.SIGINT)
    assert gone_soon(data_dir, pid), "the embedded PostgreSQL outlived serve"


def test_the_server_stays_while_another_process_uses_it_and_stops_with_the_last(
    data_dir: Path, tmp_path: Path,
) -> None:
    first, second = Serve(data_dir, tmp_path / "a.log"), None
    first.wait_ready()
    second = Serve(data_dir, tmp_path / "b.log")
    second.wait_ready()
    pid = postmaster(data_dir)
    assert pid is not None
    first.stop(signal.SIGTERM)
    time.sleep(1)
    assert postmaster(data_dir) == pid  # the second process still uses it
    assert httpx.get(f"http://127.0.0.1:{second.port}/readyz", timeout=5).status_code == 200
    second.stop(signal.SIGTERM)
    assert gone_soon(data_dir, pid), "SIGTERM on the last user left the server running"


def test_a_killed_process_leaves_the_server_to_be_reused_and_stopped_by_the_next(
    data_dir: Path, tmp_path: Path,
) -> None:
    crashed = Serve(data_dir, tmp_path / "a.log")
    crashed.wait_ready()
    pid = postmaster(data_dir)
    assert pid is not None
    crashed.stop(signal.SIGKILL)
    time.sleep(0.5)
    assert postmaster(data_dir) == pid
    successor = Serve(data_dir, tmp_path / "b.log")
    successor.wait_ready()
    assert postmaster(data_dir) == pid  # reused, not a second server
    successor.stop(signal.SIGINT)
    assert gone_soon(data_dir, pid), "the dead process's entry kept the server alive"


def test_a_server_made_for_the_occasion_leaves_no_folder_behind() -> None:
    """``delete_on_exit`` (the test session's own server) removes the whole folder, the
    users' list and its lock too: a run used to leave one folder behind, forever."""
    from app.database import embedded_server

    folder = Path(tempfile.mkdtemp(prefix="tenantry-test-leftover-"))
    with embedded_server(folder, delete_on_exit=True) as url:
        assert url.startswith("postgresql://")
        assert (folder / "postgres.users").exists()
    assert not folder.exists(), sorted(p.name for p in folder.iterdir())
