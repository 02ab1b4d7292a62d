"""Audit chain archives: written as NDJSON with their hashes, verified from the file alone
(pure), and through the CLI against the real database."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.database import DatabaseUrls
from app.settings import Settings
from tenants.audit.archive import (
    ArchiveFormatError,
    event_line,
    header_for,
    verify_archive,
)
from tenants.audit.chain import ChainHead
from tests.conftest import OrgHandle, make_unit
from tests.support.processes import tenantry_command, tenantry_env
from tests.tenants.test_audit_chain import chain


def archived(n: int) -> list[str]:
    events = chain(n)
    head = ChainHead(events[-1].event.seq, events[-1].hash) if events else ChainHead(0, "0" * 64)
    return [header_for("acme", "org", head).line(), *(event_line(e) for e in events)]


def edited(lines: list[str], index: int, **changes: Any) -> list[str]:
    data = json.loads(lines[index])
    data["event"].update(changes)
    return [*lines[:index], json.dumps(data), *lines[index + 1 :]]


def test_an_archive_verifies_from_its_lines_alone_and_reports_its_head() -> None:
    lines = archived(25)
    header, result = verify_archive(lines)
    assert result.ok and result.checked == 25
    assert result.head == header.head and header.events == 25
    assert (header.organisation, header.organisation_id) == ("acme", "org")


def test_an_empty_chain_archives_and_verifies() -> None:
    header, result = verify_archive(archived(0))
    assert result.ok and result.checked == 0 and header.head.seq == 0


@pytest.mark.parametrize(
    ("tamper", "seq", "reason"),
    [
        (lambda lines: edited(lines, 7, actor_display="someone else"), 7, "edited"),
        (lambda lines: [*lines[:5], *lines[6:]], 5, "missing"),
        (lambda lines: [*lines[:5], lines[6], lines[5], *lines[7:]], 5, "missing"),
        (lambda lines: [*lines[:8], lines[8], *lines[8:]], 8, "out of order or duplicated"),
        (lambda lines: lines[:-3], 18, "removed from the end"),
    ],
)
def test_a_tampered_archive_is_broken_at_the_first_event_that_does_not_hold(
    tamper: Any, seq: int, reason: str
) -> None:
    _, result = verify_archive(tamper(archived(20)))
    assert result.broken is not None
    assert (result.broken.seq, reason in result.broken.reason) == (seq, True), result.broken


def test_an_archive_cut_short_with_a_matching_header_is_caught_by_a_recorded_head() -> None:
    whole = archived(12)
    recorded = verify_archive(whole)[1].head
    short = archived(9)  # a consistent archive of the first nine events
    assert verify_archive(short)[1].ok
    _, result = verify_archive(short, expected_head=recorded)
    assert result.broken is not None and "removed from the end" in result.broken.reason


def test_what_is_not_an_archive_is_refused_naming_the_line() -> None:
    with pytest.raises(ArchiveFormatError, match="empty"):
        verify_archive([])
    with pytest.raises(ArchiveFormatError, match="line 1"):
        verify_archive(['{"format": "something/else"}'])
    with pytest.raises(ArchiveFormatError, match="line 1"):
        verify_archive(["not json"])
    lines = archived(3)
    with pytest.raises(ArchiveFormatError, match="line 3"):
        verify_archive([lines[0], lines[1], '{"seq": 2}', lines[3]])


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tenantry_command(), "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_cli_archives_a_real_chain_and_verifies_it_without_the_database(
    org: OrgHandle, database_urls: DatabaseUrls, settings: Settings, tmp_path: Path
) -> None:
    for _ in range(6):
        await make_unit(org)
    env = tenantry_env(database_urls, settings.secret_key, tmp_path / "data")
    path = tmp_path / "chain.ndjson"
    made = await asyncio.to_thread(run, env, "archive", "--org", org.slug, "--out", str(path))
    assert made.returncode == 0, made.stdout + made.stderr
    head = made.stdout.strip().splitlines()[-1]
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + int(head.split(":")[0]) >= 8  # the organisation, its root, 6 units
    assert not (tmp_path / "chain.ndjson.partial").exists()

    offline = {"PATH": env["PATH"]}  # no database settings at all
    checked = await asyncio.to_thread(
        run, offline, "verify-archive", str(path), "--expect-head", head
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "intact" in checked.stdout

    path.write_text("\n".join(edited(lines, 2, action="unit.deleted")) + "\n")
    broken = await asyncio.to_thread(run, offline, "verify-archive", str(path))
    assert broken.returncode == 1
    assert "broken at event 2" in broken.stdout
