"""Telling products what happened: events, their deliveries, and each product's webhook
settings, in the caller's tenant transaction.

``publish`` is the one way domain code tells products anything. It writes the event to
the outbox, one delivery per product with a webhook address, and one durable job per
delivery (``webhook.deliver``, ``tenants.webhooks.sender``), all in the transaction of the
change it announces: the event exists if and only if the change committed, and the worker
delivers it at least once, with the same ``webhook-id`` on every attempt.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants import db, network
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, IllegalTransitionError, InvalidInputError
from tenants.jobs import service as jobs
from tenants.jobs.models import Job, JobStatus
from tenants.models_base import get_by_id
from tenants.pagination import Page, Sort, paginate
from tenants.products.models import Product
from tenants.secrets import SecretBox
from tenants.webhooks import signing
from tenants.webhooks.models import DeliveryStatus, WebhookDelivery
from tenants.webhooks.rules import check_webhook_url, rotation_problem

JOB_KIND = "webhook.deliver"
#: Jobs are keyed ``webhook:<delivery id>`` (see ``job_key``).
JOB_KEY_PREFIX = "webhook"
#: Attempts per delivery before it is dead: with the job queue's backoff (2 s doubling,
#: at most an hour) a receiver may be down for about four hours without losing an event.
DELIVERY_ATTEMPTS = 15
#: How long the secret before a rotation keeps signing, so receivers can switch over.
ROTATION_GRACE = timedelta(hours=24)
#: The label the secrets' encryption key is derived under (not a secret itself).
SECRET_PURPOSE = "webhook-secrets"  # noqa: S105


def secret_box(secret_key: str) -> SecretBox:
    """The box webhook secrets are sealed in (its own key, derived from the service's)."""
    return SecretBox(secret_key, SECRET_PURPOSE)


def job_key(delivery_id: uuid.UUID) -> str:
    return f"{JOB_KEY_PREFIX}:{delivery_id}"


#: Take the member's event counter (created at 0 the first time) and lock it until the
#: publishing transaction ends: publishers of one member's events take turns, so numbers
#: follow commit order without gaps. ON CONFLICT DO UPDATE returns the latest committed
#: value after waiting for a concurrent publisher.
LOCK_COUNTER_SQL = """
WITH counter AS (
  INSERT INTO member_event_counters (tenant_id, member_id, last_sequence) VALUES ($1, $2, 0)
  ON CONFLICT (tenant_id, member_id)
  DO UPDATE SET last_sequence = member_event_counters.last_sequence
  RETURNING last_sequence
)
SELECT last_sequence FROM counter
"""

#: Event, deliveries and jobs in one statement. A repeated key inserts no event, so the
#: rest inserts nothing either (nor uses up a sequence number); the count of queued jobs
#: comes back. The deliveries of a member's events to one product share a job queue
#: (``delivery_queue``): one in flight at a time, in order. ``clock_timestamp()`` orders
#: the jobs of one transaction too (``now()`` is the same for all of them).
PUBLISH_SQL = """
WITH event AS (
  INSERT INTO outbox_events (tenant_id, topic, idempotency_key, payload, created_at)
  VALUES ($1, $2, $3, $4::jsonb, now())
  ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
  RETURNING id
), counted AS (
  UPDATE member_event_counters c SET last_sequence = $10::bigint
    FROM event
   WHERE $9::uuid IS NOT NULL AND c.tenant_id = $1 AND c.member_id = $9::uuid
), deliveries AS (
  INSERT INTO webhook_deliveries (id, tenant_id, product_id, event_id, topic, idempotency_key,
                                  status, attempts, created_at, updated_at)
  SELECT gen_random_uuid(), $1, p.id, event.id, $2, $3, 'pending', 0, now(), now()
    FROM event, products p
   WHERE p.tenant_id = $1 AND p.webhook_url IS NOT NULL
     AND ($5::uuid[] IS NULL OR p.id = ANY($5::uuid[]))
  RETURNING id, product_id
), queued AS (
  INSERT INTO jobs (id, tenant_id, kind, payload, key, queue, status, run_at, attempts,
                    max_attempts, claims, checkpoint, created_at, updated_at)
  SELECT gen_random_uuid(), $1, $7, jsonb_build_object('delivery_id', d.id::text),
         $8 || ':' || d.id::text,
         CASE WHEN $9::uuid IS NOT NULL
              THEN $8 || ':' || d.product_id::text || ':' || $9::uuid::text END,
         'queued', now(), 0, $6, 0, '{}'::jsonb, clock_timestamp(), now()
    FROM deliveries d
  ON CONFLICT (tenant_id, key) DO NOTHING
  RETURNING 1
)
SELECT count(*) AS queued FROM queued
"""


def delivery_queue(product_id: uuid.UUID, member_id: uuid.UUID) -> str:
    """The job queue of a member's events to one product (as PUBLISH_SQL names it)."""
    return f"{JOB_KEY_PREFIX}:{product_id}:{member_id}"


async def publish(
    topic: str,
    payload: dict[str, Any],
    *,
    key: str,
    product_ids: Collection[uuid.UUID] | None = None,
) -> int:
    """Announce ``topic`` to every product with a webhook address (only ``product_ids``
    when given); returns how many deliveries were queued.

    ``key`` is the event's idempotency key and its ``webhook-id``: publishing the same key
    again is a no-op returning 0, so a step that crashed after publishing may publish again.

    An event whose payload names a ``member_id`` is that member's: it gets the next of the
    member's sequence numbers (``member_sequence`` in its data, 1, 2, 3… in commit order,
    without gaps), and reaches each product after every earlier event of the member, one
    delivery in flight at a time. The publishing transaction holds the member's counter
    until it ends. Raises NoTenantTransactionError outside a tenant transaction.
    """
    org = db.current_org()
    member = payload.get("member_id")
    member_id = None if member is None else uuid.UUID(str(member))
    sequence = None
    if member_id is not None:
        counter = await db.fetch(LOCK_COUNTER_SQL, org, member_id)
        sequence = int(counter[0]["last_sequence"]) + 1
        payload = {**payload, "member_sequence": sequence}
    rows = await db.fetch(
        PUBLISH_SQL,
        org,
        topic,
        key,
        json.dumps(payload),
        None if product_ids is None else list(product_ids),
        DELIVERY_ATTEMPTS,
        JOB_KIND,
        JOB_KEY_PREFIX,
        member_id,
        sequence,
    )
    return int(rows[0]["queued"])


# --- a product's webhook settings -----------------------------------------------------------


async def _product(product_id: uuid.UUID) -> Product:
    return await get_by_id(Product, product_id, "product", for_update=True)


def previous_secret_until(product: Product, now: datetime | None = None) -> datetime | None:
    """Until when the secret before the last rotation still signs; None when it does not."""
    until = product.webhook_previous_until
    if product.webhook_previous_secret and until and until > (now or datetime.now(UTC)):
        return until
    return None


async def set_webhook_url(
    product_id: uuid.UUID, url: str, *, box: SecretBox, actor: Actor
) -> tuple[Product, str | None]:
    """Point the product's webhooks at ``url``; returns the product and, when it had no
    signing secret yet, the new one (shown this once). InvalidInputError naming ``url``."""
    reason = check_webhook_url(url, network.current())
    if reason:
        raise InvalidInputError(
            f"Tenantry cannot post webhooks to this address: {reason}",
            fields=[FieldProblem("url", reason)],
        )
    product = await _product(product_id)
    secret = None
    if product.webhook_secret is None:
        secret = signing.generate_secret()
        product.webhook_secret = box.encrypt(secret)
    elif product.webhook_url == url:
        return product, None
    before = product.webhook_url
    product.webhook_url = url
    await product.save(update_fields=["webhook_url", "webhook_secret", "updated_at"])
    await audit.record(
        "product.webhook_set",
        "product",
        product.id,
        actor=actor,
        before={"webhook_url": before},
        after={"webhook_url": url, "secret_created": secret is not None},
    )
    return product, secret


async def clear_webhook_url(product_id: uuid.UUID, *, actor: Actor) -> Product:
    """Stop webhooks to the product (the secret is kept for when an address is set again);
    deliveries not yet made become dead and can be retried once an address is back."""
    product = await _product(product_id)
    if product.webhook_url is None:
        return product
    before = product.webhook_url
    product.webhook_url = None
    await product.save(update_fields=["webhook_url", "updated_at"])
    await audit.record(
        "product.webhook_cleared",
        "product",
        product.id,
        actor=actor,
        before={"webhook_url": before},
        after={"webhook_url": None},
    )
    return product


async def rotate_secret(
    product_id: uuid.UUID,
    *,
    box: SecretBox,
    actor: Actor,
    grace: timedelta = ROTATION_GRACE,
    only_while_on: bool = False,
) -> tuple[Product, str]:
    """A new signing secret, returned this once. The one it replaces keeps signing too for
    ``grace``; a secret older than that is dropped (one previous secret at a time).

    With ``only_while_on`` (the console) ConflictError when webhooks to the product are
    off (``rules.rotation_problem``), and nothing changes; the API rotates either way."""
    product = await _product(product_id)
    problem = rotation_problem(product.webhook_url, product.webhook_secret is not None)
    if only_while_on and problem is not None:
        raise ConflictError(problem)
    secret = signing.generate_secret()
    now = datetime.now(UTC)
    product.webhook_previous_secret = product.webhook_secret
    product.webhook_previous_until = now + grace if product.webhook_secret else None
    product.webhook_secret = box.encrypt(secret)
    await product.save(
        update_fields=[
            "webhook_secret",
            "webhook_previous_secret",
            "webhook_previous_until",
            "updated_at",
        ]
    )
    await audit.record(
        "product.webhook_secret_rotated",
        "product",
        product.id,
        actor=actor,
        after={"previous_secret_until": product.webhook_previous_until},
    )
    return product, secret


# --- the delivery log -----------------------------------------------------------------------


async def get_delivery(delivery_id: uuid.UUID, *, for_update: bool = False) -> WebhookDelivery:
    return await get_by_id(WebhookDelivery, delivery_id, "webhook delivery", for_update=for_update)


async def list_deliveries(
    product_id: uuid.UUID,
    *,
    status: DeliveryStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
    oldest_first: bool = False,
) -> Page[WebhookDelivery]:
    """A product's deliveries, newest first (or oldest); NotFoundError for an unknown
    product."""
    product = await get_by_id(Product, product_id, "product")
    query = WebhookDelivery.filter(product_id=product.id)
    if status is not None:
        query = query.filter(status=status)
    return await paginate(
        query,
        Sort("created_at", descending=not oldest_first),
        cursor=cursor,
        limit=limit,
        within=product.id,
    )


async def delivery_counts(product_id: uuid.UUID) -> dict[DeliveryStatus, int]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM webhook_deliveries WHERE tenant_id = $1 "
        "AND product_id = $2 GROUP BY status",
        db.current_org(),
        product_id,
    )
    counts = dict.fromkeys(DeliveryStatus, 0)
    counts.update({DeliveryStatus(r["status"]): int(r["n"]) for r in rows})
    return counts


async def retry_delivery(delivery_id: uuid.UUID, *, actor: Actor) -> WebhookDelivery:
    """Try a dead delivery again with a fresh set of attempts (its job is re-queued, due
    now); IllegalTransitionError unless the delivery is dead."""
    delivery = await get_delivery(delivery_id, for_update=True)
    if delivery.status != DeliveryStatus.DEAD:
        raise IllegalTransitionError(
            f"only a dead delivery can be retried; this one is {delivery.status.value}",
            extra={"delivery_status": delivery.status.value},
        )
    job = await Job.filter(key=job_key(delivery.id)).first()
    if job is not None and job.status == JobStatus.DEAD:
        await jobs.retry_job(job.id, actor=actor)
    elif job is None or job.status == JobStatus.DONE:
        # The job finished without delivering (the address was cleared): a new one.
        await jobs.enqueue(
            JOB_KIND,
            {"delivery_id": str(delivery.id)},
            key=f"{job_key(delivery.id)}:retry:{uuid.uuid4().hex[:12]}",
            max_attempts=DELIVERY_ATTEMPTS,
            queue=None if job is None else job.queue,
        )
    delivery.status = DeliveryStatus.PENDING
    await delivery.save(update_fields=["status", "updated_at"])
    await audit.record(
        "webhook_delivery.retried",
        "webhook_delivery",
        delivery.id,
        actor=actor,
        before={"status": DeliveryStatus.DEAD},
        after={
            "status": delivery.status,
            "topic": delivery.topic,
            "product_id": delivery.product_id,
        },
    )
    return delivery
