"""A real HTTP webhook receiver for tests: verifies each signature as a product would and
records what arrived; it can be taken "down" (answers 503) for a while."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tenants.webhooks import signing


@dataclass
class Received:
    webhook_id: str
    topic: str
    body: bytes

    @property
    def data(self) -> dict[str, object]:
        parsed: dict[str, object] = orjson.loads(self.body)["data"]
        return parsed


@dataclass
class Receiver:
    url: str
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    forged: int = 0
    #: While true, every request is answered 503 (the product is down).
    down: bool = False

    def by_id(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for item in self.received:
            found.setdefault(item.webhook_id, []).append(item)
        return found

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if self.down:
            self.refused += 1
            return Response(status_code=503)
        try:
            webhook_id = signing.verify(self.secret, request.headers, body)
        except signing.WebhookVerificationError:
            self.forged += 1
            return Response(status_code=401)
        self.received.append(Received(webhook_id, orjson.loads(body)["type"], body))
        return Response(status_code=204)


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    """A receiver served by uvicorn in the test's event loop on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    receiver = Receiver(f"http://127.0.0.1:{port}/hooks")
    app = Starlette(routes=[Route("/hooks", receiver.handle, methods=["POST"])])
    server = _Quiet(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag only
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
