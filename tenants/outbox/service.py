"""Writing events to the outbox, in the caller's tenant transaction."""

from __future__ import annotations

import json
from typing import Any

from tenants import db


async def emit(topic: str, payload: dict[str, Any], *, key: str) -> None:
    """Append an event; ``key`` is its idempotency key (a repeat with the same key is a no-op)."""
    await db.connection().execute_query(
        "INSERT INTO outbox_events (tenant_id, topic, idempotency_key, payload, created_at) "
        "VALUES ($1, $2, $3, $4::jsonb, now()) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
        [db.current_org(), topic, key, json.dumps(payload)],
    )
