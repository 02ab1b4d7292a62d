"""Verifying the chain from the console: a job that checks the chain in parts (a checkpoint
after each), records its finding as an ``audit.verified`` event, and finds what the CLI's
one-transaction walk finds, at the same place."""

from __future__ import annotations

import asyncpg
import pytest

from tenants import db
from tenants.actors import system_actor
from tenants.audit import service as audit
from tenants.audit import verification
from tenants.jobs.worker import Worker
from tests.conftest import OrgHandle
from tests.tenants.test_audit_log import event_at, seed

ASKER = system_actor("cli")


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification, "PART", 3)  # several parts even for a short chain


async def verify_by_job(org: OrgHandle) -> verification.Outcome:
    async with db.tenant_transaction(org.id):
        first = await verification.start(actor=ASKER)
        again = await verification.start(actor=ASKER)  # one at a time: the same job
        assert again == first
        waiting = await verification.progress()
        assert waiting is not None and waiting.checked == 0
    await Worker(concurrency=1).run_until_idle()
    async with db.tenant_transaction(org.id):
        assert await verification.progress() is None
        outcome = await verification.last_outcome()
        checkpoint = await db.fetch_one(
            "SELECT checkpoint, attempts FROM jobs WHERE tenant_id = $1 AND id = $2",
            org.id, first,
        )
    assert outcome is not None and checkpoint is not None
    assert checkpoint["attempts"] == 0
    return outcome


async def cli_break(org: OrgHandle) -> int | None:
    async with db.tenant_transaction(org.id):
        found = await audit.verify()
    return found.broken.seq if found.broken else None


async def test_an_intact_chain_is_checked_to_its_head_in_parts_and_says_so(org: OrgHandle) -> None:
    await seed(org, 4)
    async with db.tenant_transaction(org.id):
        assert await verification.last_outcome() is None
        head = await audit.stored_head()
    outcome = await verify_by_job(org)
    assert outcome.intact and outcome.broken_at is None and outcome.reason is None
    assert (outcome.checked, outcome.head_seq) == (head.seq, head.seq)
    assert outcome.requested_by == ASKER.display


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ("UPDATE audit_events SET actor_display = 'someone else' WHERE tenant_id = $1 AND id = "
         "(SELECT event_id FROM audit_chain WHERE tenant_id = $1 AND seq = 5)", "edited"),
        ("DELETE FROM audit_chain WHERE tenant_id = $1 AND seq = 7", "missing"),
        ("DELETE FROM audit_chain WHERE tenant_id = $1 AND seq = "
         "(SELECT max(seq) FROM audit_chain WHERE tenant_id = $1)", "removed from the end"),
    ],
    ids=["edited", "entry-removed", "last-entry-removed"],
)
async def test_tampering_is_found_where_the_cli_finds_it(
    org: OrgHandle, owner_conn: asyncpg.Connection, tamper: str, words: str
) -> None:
    await seed(org, 4)
    assert await event_at(owner_conn, org, 5)
    await owner_conn.execute(tamper, org.id)
    expected = await cli_break(org)
    assert expected is not None
    outcome = await verify_by_job(org)
    assert not outcome.intact
    assert outcome.broken_at == expected
    assert outcome.reason is not None and words in outcome.reason
    assert outcome.checked == expected - 1  # every event before the break holds
