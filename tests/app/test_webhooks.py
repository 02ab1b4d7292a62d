"""Webhooks end to end: a product's address and secret over the API, events published in
the transaction of the change, delivered by the real job worker to a real HTTP receiver
started here, signed (checked with ``signing.verify`` as a product would), retried with
the same ``webhook-id``, dead after the last attempt, and retried from the API."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tenants import db, network
from tenants.jobs.worker import Worker
from tenants.webhooks import service as webhooks
from tenants.webhooks.signing import WebhookVerificationError, verify
from tests.conftest import OrgHandle, make_product, row_counts
from tests.support.api_schema import assert_problem, error_fields

LATER = timedelta(hours=2)  # claims retries due within two hours: backoff without waiting


@dataclass
class Arrival:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class ScriptedReceiver:
    """Answers each request with the next status of ``script`` (then 200), recording all."""

    url: str
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.script += [(s, headers or {}) for s in statuses]

    async def handle(self, request: Request) -> Response:
        self.arrivals.append(Arrival(dict(request.headers), await request.body()))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return Response(status_code=status, headers=headers)


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@pytest.fixture
async def receiver() -> AsyncIterator[ScriptedReceiver]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    found = ScriptedReceiver(f"http://127.0.0.1:{sock.getsockname()[1]}/hooks")
    app = Starlette(routes=[Route("/hooks", found.handle, methods=["POST"])])
    server = _Quiet(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 -- uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield found
    server.should_exit = True
    await task
    sock.close()


async def hooked_product(org: OrgHandle, url: str) -> tuple[dict[str, Any], str]:
    product = await make_product(org)
    response = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": url})
    assert response.status_code == 200, response.text
    secret = response.json()["secret"]
    assert secret and secret.startswith("whsec_")
    return product, secret


async def change_policy(org: OrgHandle, value: bool = False) -> None:
    response = await org.put(
        "/v1/policy/rules",
        json={"target_kind": "unit", "target_id": str(org.root_unit_id),
              "setting": "sharing.obtain_from_third_parties", "value": value, "reason": "test"},
    )
    assert response.status_code == 200, response.text


async def deliveries(org: OrgHandle, product: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    response = await org.get(f"/v1/products/{product['id']}/webhook-deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def run_worker() -> int:
    return await Worker(concurrency=4).run_until_idle(ahead=LATER)


async def test_a_policy_change_is_delivered_signed_to_every_product_with_a_webhook(
    org: OrgHandle, receiver: ScriptedReceiver
) -> None:
    product, secret = await hooked_product(org, receiver.url)
    await make_product(org)  # no webhook: nothing for it

    await change_policy(org)
    [pending] = await deliveries(org, product)
    assert (pending["topic"], pending["status"], pending["attempts"]) == ("policy.changed", "pending", 0)
    await run_worker()

    [arrival] = receiver.arrivals
    assert verify(secret, arrival.headers, arrival.body) == pending["idempotency_key"]
    assert arrival.headers["content-type"] == "application/json"
    event = arrival.event
    assert set(event) == {"id", "type", "timestamp", "data"}
    assert (event["id"], event["type"]) == (pending["idempotency_key"], "policy.changed")
    assert event["data"]["organisation_id"] == str(org.id)
    [delivered] = await deliveries(org, product)
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == (
        "delivered", 1, 200,
    )
    assert delivered["delivered_at"] is not None


async def test_a_failed_attempt_is_retried_with_the_same_webhook_id_until_delivered(
    org: OrgHandle, receiver: ScriptedReceiver
) -> None:
    product, secret = await hooked_product(org, receiver.url)
    receiver.answer(500, 503)
    receiver.answer(429, headers={"Retry-After": "120"})

    await change_policy(org)
    await run_worker()

    assert len(receiver.arrivals) == 4
    ids = {verify(secret, a.headers, a.body) for a in receiver.arrivals}
    assert len(ids) == 1
    assert len({a.body for a in receiver.arrivals}) == 1, "the body is the same on every attempt"
    [delivery] = await deliveries(org, product)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered", 4, 200,
    )
    assert delivery["last_error"] is None


async def test_after_the_last_attempt_the_delivery_is_dead_and_a_retry_from_the_api_delivers_it(
    org: OrgHandle, receiver: ScriptedReceiver, owner_conn: asyncpg.Connection
) -> None:
    product, secret = await hooked_product(org, receiver.url)
    receiver.answer(*[500] * webhooks.DELIVERY_ATTEMPTS)

    await change_policy(org)
    await run_worker()

    assert len(receiver.arrivals) == webhooks.DELIVERY_ATTEMPTS
    [dead] = await deliveries(org, product, status="dead")
    assert (dead["attempts"], dead["last_status_code"]) == (webhooks.DELIVERY_ATTEMPTS, 500)
    assert dead["last_error"] == "HTTP 500 Internal Server Error"
    job_status = await owner_conn.fetchval(
        "SELECT status FROM jobs WHERE key = $1", f"webhook:{dead['id']}"
    )
    assert job_status == "dead"

    retried = await org.post(f"/v1/webhook-deliveries/{dead['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    await run_worker()

    [delivered] = await deliveries(org, product)
    assert delivered["status"] == "delivered"
    assert verify(secret, receiver.arrivals[-1].headers, receiver.arrivals[-1].body) == dead[
        "idempotency_key"
    ]
    again = await org.post(f"/v1/webhook-deliveries/{dead['id']}/retry")
    assert assert_problem(again, 409)["type"] == "/problems/illegal_transition"
    actions = await owner_conn.fetch(
        "SELECT action FROM audit_events WHERE tenant_id = $1 AND action = 'webhook_delivery.retried'",
        org.id,
    )
    assert len(actions) == 1


async def test_an_unreachable_receiver_is_recorded_as_a_failed_attempt(
    org: OrgHandle,
) -> None:
    with socket.socket() as closed:  # a port nobody listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    product, _ = await hooked_product(org, f"http://127.0.0.1:{port}/hooks")
    await change_policy(org)

    await Worker().run_once()

    [delivery] = await deliveries(org, product)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending", 1, None,
    )
    assert delivery["last_error"].startswith("ConnectError")


async def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(
    org: OrgHandle, receiver: ScriptedReceiver, owner_conn: asyncpg.Connection
) -> None:
    product, old = await hooked_product(org, receiver.url)

    rotated = await org.post(f"/v1/products/{product['id']}/webhook/rotate-secret")

    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["previous_secret_until"] is not None
    await change_policy(org)
    await run_worker()
    [first] = receiver.arrivals
    assert len(first.headers["webhook-signature"].split()) == 2
    assert verify(new, first.headers, first.body) == verify(old, first.headers, first.body)

    await owner_conn.execute(
        "UPDATE products SET webhook_previous_until = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(product["id"]),
    )
    await change_policy(org, value=True)
    await run_worker()
    second = receiver.arrivals[-1]
    assert len(second.headers["webhook-signature"].split()) == 1
    verify(new, second.headers, second.body)
    with pytest.raises(WebhookVerificationError):
        verify(old, second.headers, second.body)
    settings = (await org.get(f"/v1/products/{product['id']}/webhook")).json()
    assert settings == {
        "product_id": product["id"], "url": receiver.url, "has_secret": True,
        "previous_secret_until": None,
    }


async def test_secrets_are_stored_sealed_and_shown_only_once(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    product, secret = await hooked_product(org, "https://hooks.example.com/in")
    stored = await owner_conn.fetchval(
        "SELECT webhook_secret FROM products WHERE id = $1", uuid.UUID(product["id"])
    )
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    moved = await org.put(
        f"/v1/products/{product['id']}/webhook", json={"url": "https://hooks.example.com/v2"}
    )
    assert moved.json()["secret"] is None, "an existing secret is never shown again"
    audit = await owner_conn.fetch(
        "SELECT before::text, after::text FROM audit_events WHERE tenant_id = $1", org.id
    )
    assert not any(secret in (r["before"] or "") + (r["after"] or "") for r in audit)


async def test_a_webhook_address_must_be_https_except_on_this_machine(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    product = await make_product(org)
    before = await row_counts(owner_conn)
    for url in ("http://hooks.example.com/in", "https://169.254.169.254/", "https://u:p@h.example/"):
        response = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": url})
        assert set(error_fields(assert_problem(response, 422))) == {"url"}, url
    assert await row_counts(owner_conn) == before


async def test_publish_is_idempotent_on_its_key_and_can_be_limited_to_some_products(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    first, _ = await hooked_product(org, "https://one.example/in")
    second, _ = await hooked_product(org, "https://two.example/in")
    async with db.tenant_transaction(org.id):
        assert await webhooks.publish("member.departing", {"n": 1}, key="dep:1") == 2
        assert await webhooks.publish("member.departing", {"n": 2}, key="dep:1") == 0
        only = await webhooks.publish(
            "member.departing", {}, key="dep:2", product_ids=[uuid.UUID(second["id"])]
        )
    assert only == 1
    assert [d["idempotency_key"] for d in await deliveries(org, first)] == ["dep:1"]
    assert sorted(d["idempotency_key"] for d in await deliveries(org, second)) == ["dep:1", "dep:2"]
    assert await owner_conn.fetchval(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = 'webhook.deliver'", org.id
    ) == 3


async def test_clearing_the_address_stops_deliveries_and_they_end_dead(
    org: OrgHandle, receiver: ScriptedReceiver
) -> None:
    product, _ = await hooked_product(org, receiver.url)
    await change_policy(org)
    assert (await org.delete(f"/v1/products/{product['id']}/webhook")).status_code == 204

    await run_worker()

    assert receiver.arrivals == []
    [dead] = await deliveries(org, product, status="dead")
    assert dead["last_error"] == "the product has no webhook address any more"


async def test_an_address_is_checked_again_when_sent_and_a_private_one_gets_nothing(
    org: OrgHandle, receiver: ScriptedReceiver
) -> None:
    """The check at saving sees the text; a name can point elsewhere by the time the
    event goes. Here the operator's policy tightens after the address was saved (this
    machine allowed in development, not in production): the delivery sends nothing and
    says why."""
    product, _ = await hooked_product(org, receiver.url.replace("127.0.0.1", "localhost"))
    refused = await org.put(
        f"/v1/products/{product['id']}/webhook", json={"url": "https://10.0.0.5/hook"}
    )
    assert "is on a private network" in error_fields(assert_problem(refused, 422))["url"]
    production = network.NetworkPolicy(loopback=False, private=False)
    before = network.current()
    network.configure(production)
    try:
        await change_policy(org)
        await run_worker()
    finally:
        network.configure(before)
    assert receiver.arrivals == []
    [delivery] = await deliveries(org, product)
    assert delivery["status"] == "dead"
    assert delivery["last_error"] == "not sent: names this machine"


async def test_a_connection_goes_to_the_address_the_policy_checked_resolving_once(
    receiver: ScriptedReceiver,
) -> None:
    """The sender's transport resolves a name once per connection, checks every address
    and connects to a checked one: no second lookup between the check and the connect for
    a name to answer differently (DNS rebinding). Here the names exist only in the test's
    resolver, so an arrival proves the connection used the checked address; the request
    still names the host (and TLS would verify the certificate against it)."""
    port = httpx.URL(receiver.url).port
    asked: list[str] = []

    async def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        answers = {"receiver.example": ["127.0.0.1"], "rebound.example": ["10.0.0.7"]}
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    async with httpx.AsyncClient(transport=network.PolicedTransport(dns)) as client:
        answer = await client.post(f"http://receiver.example:{port}/hooks", content=b"{}")
        assert answer.status_code == 200
        with pytest.raises(network.Refused, match=r"rebound\.example resolves to 10\.0\.0\.7"):
            await client.post(f"http://rebound.example:{port}/hooks", content=b"{}")
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.invalid"):
            await client.post("http://nowhere.invalid/hooks", content=b"{}")
    assert asked == ["receiver.example", "rebound.example", "nowhere.invalid"]
    [arrival] = receiver.arrivals
    assert arrival.headers["host"] == f"receiver.example:{port}"


async def test_an_answer_is_bounded_as_sent_and_as_it_decodes() -> None:
    """A receiver (or a Keycloak server) an organisation names answers a few hundred bytes
    marked ``gzip, gzip`` that decode to 100 MB, or simply more than the bound: the policed
    transport refuses both before they fill memory, and reads an honest answer."""
    bomb = gzip.compress(gzip.compress(b"\0" * (100 << 20), compresslevel=9), compresslevel=9)
    bodies = iter([
        (bomb, b"Content-Encoding: gzip, gzip\r\n"),
        (b"x" * 5_000, b""),
        (gzip.compress(b'{"ok": true}'), b"Content-Encoding: gzip\r\n"),
    ])
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                requests.append(await reader.readuntil(b"\r\n\r\n"))
                body, extra = next(bodies)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
                             % (len(body), extra, body))
                await writer.drain()
        writer.close()

    listening = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/hooks"
    transport = network.PolicedTransport(max_response_bytes=4_096)
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="larger than 4096 bytes"):
                await client.get(url)
            with pytest.raises(httpx.RemoteProtocolError, match="larger than 4096 bytes"):
                await client.get(url)
            assert (await client.get(url)).json() == {"ok": True}
    finally:
        listening.close()
    assert all(b"\r\nAccept-Encoding: identity\r\n" in r for r in requests)
