"""The embedded server's system account is made once per machine, however many
processes start their first server at once (a new machine: two test workers, or
``serve`` and ``worker`` on two data folders)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def account() -> Iterator[str]:
    """A throwaway account name, removed afterwards if a test made it."""
    name = f"tnt{uuid.uuid4().hex[:12]}"
    yield name
    if os.geteuid() == 0:
        subprocess.run(["userdel", name], capture_output=True, check=False)


def test_first_starts_at_once_make_one_account_and_all_go_on(account: str, tmp_path: Path) -> None:
    """Six processes ask for the account at the same moment (they wait on one file, then
    all go): none fails, and the account exists once. Each finds no account and then
    pauses 50 ms before going on, so that all six are between the check and the creation
    together, as two first starts on a slow new machine can be; without the lock most of
    them would then run ``useradd`` for an account another has just made."""
    go = tmp_path / "go"
    script = (
        "import pwd, sys, time; from pathlib import Path; from app import database\n"
        "found = pwd.getpwnam\n"
        "def slow_to_find(name):\n"
        "    try:\n"
        "        return found(name)\n"
        "    except KeyError:\n"
        "        time.sleep(0.05)\n"
        "        raise\n"
        "pwd.getpwnam = slow_to_find\n"
        "while not Path(sys.argv[2]).exists(): time.sleep(0.001)\n"
        "database.ensure_system_user(sys.argv[1])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, account, str(go)], cwd=ROOT,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    go.touch()
    results = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0] * 6, [err for _, err in results]
    if os.geteuid() == 0:
        entries = [e for e in pwd.getpwall() if e.pw_name == account]
        assert len(entries) == 1
    else:  # not root: the server runs as the caller, and no account is made
        with pytest.raises(KeyError):
            pwd.getpwnam(account)


def test_an_account_made_outside_the_lock_meanwhile_is_taken(
    account: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """useradd fails because another process (not using the lock) made the account between
    the check and the creation: the account is there, so the start goes on."""
    made: list[str] = []

    def getpwnam(name: str) -> object:
        if not made:
            raise KeyError(name)
        return object()

    def useradd(args: list[str], **_: object) -> None:
        made.append(args[-1])  # the other process wins the race
        raise subprocess.CalledProcessError(9, args, stderr=f"user '{args[-1]}' already exists")

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(subprocess, "run", useradd)
    database.ensure_system_user(account, lock_dir=tmp_path)
    assert made == [account]


def test_a_failed_useradd_without_the_account_is_raised(
    account: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def getpwnam(name: str) -> object:
        raise KeyError(name)

    def useradd(args: list[str], **_: object) -> None:
        raise subprocess.CalledProcessError(1, args, stderr="useradd: cannot lock /etc/passwd")

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(subprocess, "run", useradd)
    with pytest.raises(KeyError):
        database.ensure_system_user(account, lock_dir=tmp_path)
