"""A departure reinstated in the middle of its transfer, with the product's webhook receiver
down around the reinstatement: the running step is cancelled where it stopped, products
hear of every item given back, and a product applying events in the order they arrive
ends with exactly what Tenantry shows."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tenants.departures import steps
from tenants.departures.service import returned_batches
from tenants.jobs.worker import Worker
from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items, start
from tests.support.webhook_receiver import Received, Receiver, running_receiver

#: Items moved per transfer batch in this test (the product's 5,000 made small, so that six
#: batches cost a fifth of the time): the reinstatement must land between two of them.
BATCH = 1_000
ITEMS = 6 * BATCH


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


class ProductView:
    """What a product knows, built only from the events it receives, in arrival order."""

    def __init__(self, items: dict[str, str]) -> None:
        #: external id → (holder member id, status)
        self.items = {external_id: (holder, "active") for external_id, holder in items.items()}
        self.members: dict[str, str] = {}
        self.sequences: dict[str, list[int]] = {}
        self.topics: list[str] = []

    def apply(self, event: Received) -> None:
        data: dict[str, Any] = event.data
        self.topics.append(event.topic)
        member = str(data["member_id"])
        self.sequences.setdefault(member, []).append(int(data["member_sequence"]))
        if event.topic == "content.transferred":
            for action, ids in data["items"].items():
                for external_id in ids:
                    holder, _ = self.items[external_id]
                    if action == "transfer":
                        self.items[external_id] = (str(data["successor_id"]), "active")
                    else:
                        self.items[external_id] = (holder, action)
        elif event.topic == "content.returned":
            for ids in data["items"].values():
                for external_id in ids:
                    self.items[external_id] = (member, "active")
        elif event.topic.startswith("member."):
            self.members[member] = event.topic.removeprefix("member.")


async def step_of(conn: asyncpg.Connection, departure_id: str, name: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT status, done, total FROM departure_steps WHERE departure_id = $1 AND name = $2",
        uuid.UUID(departure_id), name)
    assert row is not None
    return row


async def wait_for(condition: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_a_departure_reinstated_mid_transfer_leaves_the_product_with_what_tenantry_shows(
    org: OrgHandle, owner_conn: asyncpg.Connection, receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(steps, "BATCH", BATCH)
    boss = await make_member(org, name="Successor")
    leaver = await make_member(org, name="Leaver", manager_id=boss["id"])
    product = await make_product(org)
    hook = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": receiver.url})
    assert hook.status_code == 200, hook.text
    receiver.secret = hook.json()["secret"]
    prefix = await make_items(org, leaver["id"], product["id"], ITEMS)
    departure = await start(org, leaver["id"], reason="leaving, then not")
    # The product is down from before the transfer until after the reinstatement.
    receiver.down = True
    await owner_conn.execute("UPDATE jobs SET run_at = now() WHERE run_at > now()")

    worker = Worker(name="reinstate-test", poll_seconds=0.05, heartbeat_seconds=1)
    running = asyncio.create_task(worker.run_forever())
    try:
        async def transferring() -> bool:
            return int((await step_of(owner_conn, departure["id"], "transfer"))["done"]) > 0

        await wait_for(transferring, "the first transfer batch", within=240)
        # Hold the departure (as a reinstatement does) so the transfer pauses between
        # batches; then reinstate while it is part-way.
        async with owner_conn.transaction():
            await owner_conn.execute("SELECT 1 FROM departures WHERE id = $1 FOR UPDATE",
                                     uuid.UUID(departure["id"]))
            before = await step_of(owner_conn, departure["id"], "transfer")
        assert before["status"] == "running" and 0 < before["done"] < ITEMS, dict(before)
        response = await org.post(f"/v1/departures/{departure['id']}/reinstate",
                                  {"reason": "stays after all"})
        assert response.status_code == 200, response.text
        assert receiver.received == [] and receiver.refused > 0

        # The running step was cancelled where it stopped, and the audit trail says where.
        stopped = await step_of(owner_conn, departure["id"], "transfer")
        assert stopped["status"] == "cancelled" and before["done"] <= stopped["done"] < ITEMS
        await wait_for(lambda: _transfer_job_done(owner_conn, departure["id"]),
                       "the interrupted transfer job to notice the cancellation")
        assert (await step_of(owner_conn, departure["id"], "transfer"))["status"] == "cancelled"
        cancelled = await owner_conn.fetchval(
            "SELECT after FROM audit_events WHERE action = 'departure.cancelled'")
        assert f'"done": {stopped["done"]}' in cancelled and '"stopped_steps"' in cancelled

        receiver.down = False

        async def all_delivered() -> bool:
            # Retries wait with backoff; let that time pass.
            await owner_conn.execute(
                "UPDATE jobs SET run_at = now() WHERE status = 'queued' AND run_at > now()")
            return not await owner_conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'")

        await wait_for(all_delivered, "every delivery", within=120)
    finally:
        worker.stop()
        await running

    # Apply the events in arrival order, once each (delivery is at least once).
    view = ProductView({f"{prefix}-{n}": leaver["id"] for n in range(1, ITEMS + 1)})
    seen: set[str] = set()
    for event in receiver.received:
        if event.webhook_id not in seen:
            seen.add(event.webhook_id)
            view.apply(event)
    assert receiver.forged == 0

    rows = await owner_conn.fetch(
        "SELECT external_id, member_id::text AS holder, status FROM content_items "
        "WHERE product_id = $1", uuid.UUID(product["id"]))
    tenantry = {r["external_id"]: (r["holder"], r["status"]) for r in rows}
    assert len(tenantry) == ITEMS
    assert view.items == tenantry
    assert set(tenantry.values()) == {(leaver["id"], "active")}
    assert view.members[leaver["id"]] == "reinstated"
    # The reinstatement came after every transfer it undid, and the member's events arrived
    # numbered 1, 2, 3... with nothing missing or out of order.
    assert view.topics[-1] == "member.reinstated"
    assert "content.transferred" in view.topics and "content.returned" in view.topics
    last_transfer = max(i for i, t in enumerate(view.topics) if t == "content.transferred")
    assert last_transfer < view.topics.index("content.returned")
    sequence = view.sequences[leaver["id"]]
    assert sequence == list(range(1, len(sequence) + 1))
    assert await owner_conn.fetchval(
        "SELECT count(*) FROM departure_steps WHERE departure_id = $1 AND status = 'running'",
        uuid.UUID(departure["id"])) == 0


async def _transfer_job_done(conn: asyncpg.Connection, departure_id: str) -> bool:
    status = await conn.fetchval("SELECT status FROM jobs WHERE key = $1",
                                 f"departure:{departure_id}:transfer")
    return bool(status == "done")


async def test_two_publishers_of_one_member_take_turns_and_number_events_without_gaps(
    org: OrgHandle, owner_conn: asyncpg.Connection, receiver: Receiver,
) -> None:
    from tenants import db
    from tenants.webhooks import service as webhooks

    member = await make_member(org, name="Numbered")
    product = await make_product(org)
    hook = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": receiver.url})
    assert hook.status_code == 200, hook.text

    async def publish(n: int) -> None:
        async with db.tenant_transaction(org.id):
            await webhooks.publish("test.event", {"member_id": member["id"], "n": n},
                                   key=f"test:{n}")
            await asyncio.sleep(0.01)

    await asyncio.gather(*(publish(n) for n in range(20)))
    async with db.tenant_transaction(org.id):
        assert await webhooks.publish("test.event", {"member_id": member["id"], "n": 0},
                                      key="test:0") == 0  # a repeat uses no number
    rows = await owner_conn.fetch(
        "SELECT (e.payload->>'member_sequence')::int AS seq, j.queue, j.created_at "
        "FROM outbox_events e JOIN webhook_deliveries d ON d.event_id = e.id "
        "JOIN jobs j ON j.key = 'webhook:' || d.id::text ORDER BY j.created_at")
    assert [r["seq"] for r in rows] == list(range(1, 21))
    assert {r["queue"] for r in rows} == {f"webhook:{product['id']}:{member['id']}"}


def test_given_back_items_are_announced_per_product_in_batches_naming_the_action_undone() -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    rows = [{"product_id": a, "external_id": f"x{n:02}", "undone": "transfer"} for n in range(5)]
    rows += [{"product_id": b, "external_id": "y", "undone": "archive"},
             {"product_id": a, "external_id": "z", "undone": "delete_after_retention"}]
    assert returned_batches(rows, size=3) == [
        (a, 0, {"transfer": ["x00", "x01", "x02"]}),
        (a, 1, {"transfer": ["x03", "x04"], "delete_after_retention": ["z"]}),
        (b, 0, {"archive": ["y"]}),
    ]
