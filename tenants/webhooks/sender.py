"""The ``webhook.deliver`` job: one signed POST of one event to one product.

At least once: the delivery row is updated after the POST, so a worker killed in between
posts again on the next claim, with the same ``webhook-id`` (the event's idempotency key)
for the receiver to de-duplicate on. A 2xx answer delivers; anything else (a redirect, an
error status, a timeout, a refused connection) is a failed attempt, retried by the job
queue with exponential backoff (or after the receiver's ``Retry-After``). The attempt that
uses up the job's attempts marks the delivery dead too, and the console offers a retry.

The worker calls ``configure`` once at start with the service's secret key (secrets are
stored sealed) and may pass its own HTTP client; secrets never appear in logs or errors.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tenants import db, network, telemetry
from tenants.jobs.registry import PermanentJobError, RetryLaterError, RunningJob, handler
from tenants.secrets import SecretBox
from tenants.webhooks import service, signing
from tenants.webhooks.models import DeliveryStatus
from tenants.webhooks.rules import secrets_in_use

log = logging.getLogger(__name__)

TIMEOUT = 10.0
#: The longest ``Retry-After`` honoured (seconds); a longer one falls back to the backoff.
MAX_RETRY_AFTER = 3600


@dataclass
class _Config:
    box: SecretBox
    http: httpx.AsyncClient | None


_config: _Config | None = None


def configure(secret_key: str, *, http: httpx.AsyncClient | None = None) -> None:
    """Give the sender the service's secret key (and optionally the HTTP client to use)."""
    global _config
    _config = _Config(service.secret_box(secret_key), http)


async def aclose() -> None:
    """Close the HTTP client the sender made for itself, if any."""
    if _config is not None and _config.http is not None:
        await _config.http.aclose()
        _config.http = None


def _client(config: _Config) -> httpx.AsyncClient:
    if config.http is None:
        config.http = httpx.AsyncClient(
            transport=network.PolicedTransport(),
            timeout=httpx.Timeout(TIMEOUT),
            follow_redirects=False,
            headers={"User-Agent": "Tenantry-Webhooks/1"},
        )
    return config.http


LOAD_SQL = """
SELECT d.status, d.idempotency_key, d.topic, d.event_id, d.product_id,
       e.payload, e.created_at AS occurred_at,
       p.webhook_url, p.webhook_secret, p.webhook_previous_secret, p.webhook_previous_until,
       j.max_attempts
  FROM webhook_deliveries d
  JOIN outbox_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
  JOIN products p ON p.tenant_id = d.tenant_id AND p.id = d.product_id
  LEFT JOIN jobs j ON j.tenant_id = d.tenant_id AND j.id = $3
 WHERE d.tenant_id = $1 AND d.id = $2
"""

# WITH … SELECT: the driver returns no rows for a statement that starts with UPDATE.
RECORD_SQL = """
WITH recorded AS (
  UPDATE webhook_deliveries
     SET attempts = attempts + 1, status = $3::varchar, last_status_code = $4,
         last_error = $5, last_attempt_at = now(),
         delivered_at = CASE WHEN $3::varchar = 'delivered' THEN now() END,
         updated_at = now()
   WHERE tenant_id = $1 AND id = $2
  RETURNING product_id
)
SELECT product_id FROM recorded
"""

#: An attempt's outcome as the operators' metrics count it.
OUTCOMES = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.PENDING: "failed",
    DeliveryStatus.DEAD: "dead",
}

#: The event is delivered once every product it went to has it.
EVENT_LOCK_SQL = "SELECT 1 AS held FROM outbox_events WHERE tenant_id = $1 AND id = $2 FOR UPDATE"

EVENT_DELIVERED_SQL = """
UPDATE outbox_events SET delivered_at = now()
 WHERE tenant_id = $1 AND id = $2 AND delivered_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries
                    WHERE tenant_id = $1 AND event_id = $2 AND status <> 'delivered')
"""


def body_of(key: str, topic: str, occurred_at: datetime, payload: dict[str, Any]) -> bytes:
    """The JSON posted: ``{"id", "type", "timestamp", "data"}``, the same on every attempt."""
    return orjson.dumps(
        {
            "id": key,
            "type": topic,
            "timestamp": occurred_at.astimezone(UTC).isoformat(),
            "data": payload,
        }
    )


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """The receiver's ``Retry-After`` in seconds (delta or HTTP date), when between 1 s and
    an hour; None otherwise, so the queue's own backoff applies."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        delay = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        delay = when.timestamp() - (time.time() if now is None else now)
    return delay if 1 <= delay <= MAX_RETRY_AFTER else None


async def _record(
    job: RunningJob,
    delivery_id: uuid.UUID,
    event_id: int,
    status: DeliveryStatus,
    code: int | None,
    error: str | None,
) -> None:
    async with db.tenant_transaction(job.org_id):
        if status == DeliveryStatus.DELIVERED:
            # The event's last two deliveries, committing at once, each saw the other still
            # pending and neither marked the event delivered (71 of 6,017 under load). Held
            # first, the event's row makes the second wait; its next statement then sees
            # the first's delivery done.
            await db.fetch_one(EVENT_LOCK_SQL, job.org_id, event_id)
        row = await db.fetch_one(RECORD_SQL, job.org_id, delivery_id, status.value, code, error)
        if status == DeliveryStatus.DELIVERED:
            await db.connection().execute_query(EVENT_DELIVERED_SQL, [job.org_id, event_id])
    if row is not None:
        telemetry.WEBHOOK_DELIVERIES.inc(str(row["product_id"]), OUTCOMES[status])


@handler(service.JOB_KIND)
async def deliver(job: RunningJob) -> None:
    """POST the delivery's event to its product; see the module docstring."""
    if _config is None:
        raise RuntimeError("the webhook sender is not configured (call sender.configure)")
    delivery_id = uuid.UUID(str(job.payload["delivery_id"]))
    async with db.tenant_transaction(job.org_id):
        row = await db.fetch_one(LOAD_SQL, job.org_id, delivery_id, job.id)
    if row is None:
        raise PermanentJobError(f"webhook delivery {delivery_id} no longer exists")
    if row["status"] == DeliveryStatus.DELIVERED:
        return
    last = job.attempts + 1 >= (row["max_attempts"] or 1)
    failed = DeliveryStatus.DEAD if last else DeliveryStatus.PENDING
    if row["webhook_url"] is None or row["webhook_secret"] is None:
        await _record(
            job,
            delivery_id,
            row["event_id"],
            DeliveryStatus.DEAD,
            None,
            "the product has no webhook address any more",
        )
        raise PermanentJobError("the product has no webhook address any more")
    box = _config.box
    secrets = secrets_in_use(
        box.decrypt(row["webhook_secret"]),
        box.decrypt(row["webhook_previous_secret"]) if row["webhook_previous_secret"] else None,
        row["webhook_previous_until"],
        datetime.now(UTC),
    )
    payload = row["payload"]
    data = json.loads(payload) if isinstance(payload, str) else payload
    body = body_of(row["idempotency_key"], row["topic"], row["occurred_at"], data)
    headers = {
        **signing.sign(secrets, row["idempotency_key"], int(time.time()), body),
        "content-type": "application/json",
    }
    try:
        response = await _client(_config).post(row["webhook_url"], content=body, headers=headers)
    except network.Refused as refused:
        # Checked as the connection opened: a name saved while it pointed to the internet
        # may point to a private address since. Nothing is sent; the address has to change.
        error = f"not sent: {refused}"
        await _record(job, delivery_id, row["event_id"], failed, None, error)
        log.warning("webhook %s to product %s refused: %s", delivery_id, row["product_id"], refused)
        raise RetryLaterError(error) from None
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        await _record(job, delivery_id, row["event_id"], failed, None, error)
        log.info("webhook %s to product %s failed: %s", delivery_id, row["product_id"], error)
        raise RetryLaterError(error) from None
    if 200 <= response.status_code < 300:
        await _record(
            job, delivery_id, row["event_id"], DeliveryStatus.DELIVERED, response.status_code, None
        )
        return
    error = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    if 300 <= response.status_code < 400:
        error += " (redirects are not followed)"
    await _record(job, delivery_id, row["event_id"], failed, response.status_code, error)
    log.info("webhook %s to product %s: %s", delivery_id, row["product_id"], error)
    raise RetryLaterError(error, delay=retry_after(response))
