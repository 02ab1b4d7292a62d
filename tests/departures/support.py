"""Helpers for departure tests: many content items at once, and running the workflow."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tenants import db
from tenants.jobs.worker import Worker
from tests.conftest import OrgHandle

INSERT_ITEMS_SQL = """
INSERT INTO content_items (id, tenant_id, member_id, product_id, external_id, title, kind,
                           size, legal_hold, status, transfer_count, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, $3, $4 || '-' || g, 'Item ' || g, $5, 1000 + g,
       $6, 'active', 0, now(), now()
  FROM generate_series(1, $7) AS g
"""


async def make_items(
    org: OrgHandle,
    member_id: str | uuid.UUID,
    product_id: str | uuid.UUID,
    count: int,
    *,
    kind: str = "organisation",
    legal_hold: bool = False,
    prefix: str | None = None,
) -> str:
    """Register ``count`` items in one statement (as a product would in bulk); returns the
    external-id prefix."""
    prefix = prefix or f"{kind}-{uuid.uuid4().hex[:6]}"
    async with db.tenant_transaction(org.id):
        await db.connection().execute_query(
            INSERT_ITEMS_SQL,
            [org.id, uuid.UUID(str(member_id)), uuid.UUID(str(product_id)), prefix, kind,
             legal_hold, count],
        )
    return prefix


async def run_jobs(ahead: timedelta = timedelta(0)) -> int:
    return await Worker(name="test-worker").run_until_idle(ahead=ahead)


async def start(org: OrgHandle, member_id: str, **body: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    payload = {"member_id": member_id,
               "last_day": datetime.now(UTC).date().isoformat(), **body}
    response = await org.post("/v1/departures", payload)
    assert response.status_code == 201, response.text
    return dict(response.json())
