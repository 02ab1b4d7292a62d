"""The notification listener: when its LISTEN connection is lost, what it cached may have
missed a notification, so it must forget it at once, not only after it reconnects."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg

from app import database
from app.api import PrincipalCache
from app.auth import Principal
from app.database import DatabaseUrls
from app.notifications import Listener
from policies.cache import Answer, DecisionCache
from tenants.actors import system_actor
from tenants.ids import OrgId

NAME = "tenantry-listener-test"


@dataclass(frozen=True)
class Token:
    cache_key: str
    org_id: OrgId


async def test_a_lost_listen_connection_clears_the_caches_while_it_cannot_reconnect(
    database_urls: DatabaseUrls, owner_conn: asyncpg.Connection
) -> None:
    attempts = 0

    async def connect() -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            raise OSError("the database is away")  # it stays away: only the loss can clear
        params = database.connection_params(database_urls.app)
        params["server_settings"] = {**params["server_settings"], "application_name": NAME}
        return await asyncpg.connect(**params)

    org = OrgId(uuid.uuid4())
    decisions: DecisionCache[OrgId] = DecisionCache()
    principals = PrincipalCache()
    listener = Listener(connect, decisions, principals)
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        answer = Answer("etag", b"{}", time.monotonic() + 60)
        assert decisions.store_answer(org, "member", answer, generation=decisions.generation(org))
        token = Token("token-1", org)
        principals.put(token, Principal(org, frozenset(), system_actor("test")))
        assert decisions.answer(org, "member") is answer
        assert principals.get(token) is not None

        killed = await owner_conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            NAME,
        )
        assert killed == 1
        deadline = time.monotonic() + 10
        # The caches offer nothing to wait on: poll them (bounded) as a reader would see them.
        while decisions.answer(org, "member") is not None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert decisions.answer(org, "member") is None
        assert principals.get(token) is None
        assert not listener.connected.is_set()
    finally:
        await listener.stop()
