"""Every session the service opens is in UTC, whatever the server's or database's own
TimeZone: the console overview's "today" and an export's times were the server's
(Pacific/Kiritimati, America/New_York) while the rest of the service counted in UTC."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app import database
from app.database import DatabaseUrls
from tenants import db, overview
from tenants.requests import fulfilment
from tenants.requests.models import PrivacyExport, PrivacyRequest
from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items
from tests.requests.support import submit


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
async def kiritimati_database(database_urls: DatabaseUrls) -> AsyncIterator[str]:
    """The runtime and admin roles' TimeZone in the test database set to UTC+14 (a role's
    setting in a database outranks the database's and the role's own) for the sessions
    opened meanwhile."""
    admin = await asyncpg.connect(**database.connection_params(database_urls.admin))
    name = await admin.fetchval("SELECT current_database()")
    users = {database.connection_params(u)["user"] for u in (database_urls.app, database_urls.admin)}
    for user in users:
        await admin.execute(
            f"ALTER ROLE {_ident(user)} IN DATABASE {_ident(name)} SET TimeZone = 'Pacific/Kiritimati'"
        )
    try:
        yield name
    finally:
        for user in users:
            await admin.execute(f"ALTER ROLE {_ident(user)} IN DATABASE {_ident(name)} RESET TimeZone")
        await admin.close()


async def test_every_connection_the_service_opens_is_in_utc(
    database_urls: DatabaseUrls, kiritimati_database: str
) -> None:
    params = database.connection_params(database_urls.app)
    bare = {k: v for k, v in params.items() if k != "server_settings"}
    plain = await asyncpg.connect(**bare)
    try:
        # The role's setting applies to a session that does not pin its own.
        assert await plain.fetchval("SHOW TimeZone") == "Pacific/Kiritimati"
    finally:
        await plain.close()
    for url in (database_urls.app, database_urls.admin):
        conn = await asyncpg.connect(**database.connection_params(url))
        try:
            assert await conn.fetchval("SHOW TimeZone") == "UTC"
            assert await conn.fetchval("SELECT current_date") == datetime.now(UTC).date()
        finally:
            await conn.close()
    for role, pooled in ((None, False), (None, True), ("tenantry_owner", False)):
        entry = database.tortoise_connection(database_urls.app, role=role, pooled=pooled)
        assert entry["credentials"]["server_settings"]["TimeZone"] == "UTC"


async def test_the_overviews_overdue_holds_count_by_the_utc_day_it_is_given(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """The overview said "1 legal hold past its review date" by the session's current_date
    while the holds list (by the UTC day) said none."""
    member, product = await make_member(org), await make_product(org)
    await make_items(org, member["id"], product["id"], 1, kind="personal", legal_hold=True)
    today = datetime.now(UTC).date()
    await owner_conn.execute(
        "UPDATE content_items SET hold_review_on = $2 WHERE member_id = $1",
        uuid.UUID(member["id"]), today,
    )
    async with db.tenant_transaction(org.id):
        # A session in UTC+14, where current_date is already tomorrow for half the day.
        await db.fetch_one("SELECT set_config('TimeZone', 'Pacific/Kiritimati', true) AS z")
        on_the_day = await overview.attention(
            today, grants=False, requests=False, operations=False, holds=True
        )
        next_day = await overview.attention(
            today + timedelta(days=1), grants=False, requests=False, operations=False, holds=True
        )
    assert (on_the_day.holds_overdue, next_day.holds_overdue) == (0, 1)


async def test_an_exports_times_are_utc_in_a_session_of_another_zone(org: OrgHandle) -> None:
    mia = await make_member(org)
    sent = await submit(org, mia, "access")
    started = await org.post(f"/v1/privacy-requests/{sent['id']}/export")
    assert started.status_code in (200, 201, 202), started.text
    async with db.tenant_transaction(org.id):
        await db.fetch_one("SELECT set_config('TimeZone', 'America/New_York', true) AS z")
        request = await PrivacyRequest.get(id=sent["id"])
        export = await PrivacyExport.get(request_id=sent["id"])
        files = dict(await fulfilment.collect_files(request, export, datetime.now(UTC)))
    profile = files["profile.json"].decode()
    assert '"created_at" : "' in profile or '"created_at": "' in profile
    assert "-05:00" not in profile and "-04:00" not in profile
    assert "+00:00" in profile
