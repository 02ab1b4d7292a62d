"""A product's webhook: where events go, the secret that signs them, and the delivery log.

Requests are signed the Standard Webhooks way (``tenants.webhooks.signing``): headers
``webhook-id`` (the event's idempotency key, the same on every attempt),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``{id}.{timestamp}.{body}``, one per secret in use while a rotation's grace period runs).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import Input, ListQuery, Output, Page
from tenants.permissions import Permission
from tenants.products.models import Product
from tenants.products.service import get_product
from tenants.secrets import SecretBox
from tenants.webhooks import service
from tenants.webhooks.models import DeliveryStatus

router = ApiRouter("/v1/products", "webhooks")
deliveries = ApiRouter("/v1/webhook-deliveries", "webhooks")


class WebhookOut(Output):
    product_id: uuid.UUID
    url: str | None = Field(description="Where events are posted; null: no webhooks.")
    has_secret: bool
    previous_secret_until: datetime | None = Field(
        description="Until when the secret before the last rotation also signs."
    )

    @classmethod
    def of(cls, product: Product) -> WebhookOut:
        return cls(
            product_id=product.id,
            url=product.webhook_url,
            has_secret=product.webhook_secret is not None,
            previous_secret_until=service.previous_secret_until(product),
        )


class WebhookSet(WebhookOut):
    secret: str | None = Field(
        description="The signing secret, when this call created it; shown only this once."
    )


class WebhookIn(Input):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = (
        Field(description="https:// (http:// only for localhost).")
    )


class SecretOut(WebhookOut):
    secret: str = Field(description="The new signing secret; shown only this once.")


class DeliveryOut(Output):
    id: uuid.UUID
    product_id: uuid.UUID
    topic: str
    idempotency_key: str = Field(description="Sent as webhook-id on every attempt.")
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(Page[DeliveryOut]):
    pass


class DeliveryQuery(ListQuery):
    status: DeliveryStatus | None = None


def _box(call: Call[Any, Any]) -> SecretBox:
    return service.secret_box(call.request.app.state.settings.secret_key)


@router.get(
    "/{id}/webhook",
    summary="Get a product's webhook settings",
    permission=Permission.PRODUCTS_READ,
    response=WebhookOut,
    errors=(404,),
)
async def get_webhook(call: Call[Input, Input]) -> WebhookOut:
    return WebhookOut.of(await get_product(call.id()))


@router.put(
    "/{id}/webhook",
    summary="Set where a product's webhooks go",
    permission=Permission.PRODUCTS_WRITE,
    body=WebhookIn,
    response=WebhookSet,
    errors=(404, 422),
)
async def set_webhook(call: Call[WebhookIn, Input]) -> WebhookSet:
    """The first time, a signing secret is made and returned in ``secret`` (only then)."""
    product, secret = await service.set_webhook_url(
        call.id(), call.body.url, box=_box(call), actor=call.actor
    )
    return WebhookSet(**WebhookOut.of(product).model_dump(), secret=secret)


@router.delete(
    "/{id}/webhook",
    summary="Stop a product's webhooks",
    permission=Permission.PRODUCTS_WRITE,
    status=204,
    errors=(404,),
)
async def clear_webhook(call: Call[Input, Input]) -> None:
    """Deliveries not yet made end up dead; they can be retried once an address is set."""
    await service.clear_webhook_url(call.id(), actor=call.actor)


@router.post(
    "/{id}/webhook/rotate-secret",
    summary="Give a product's webhooks a new signing secret",
    permission=Permission.PRODUCTS_WRITE,
    response=SecretOut,
    errors=(404,),
)
async def rotate_webhook_secret(call: Call[Input, Input]) -> SecretOut:
    """The new secret is returned only this once. For 24 hours the old one signs too (a
    second signature in ``webhook-signature``), so the receiver can switch without losing
    events."""
    product, secret = await service.rotate_secret(call.id(), box=_box(call), actor=call.actor)
    return SecretOut(**WebhookOut.of(product).model_dump(), secret=secret)


@router.get(
    "/{id}/webhook-deliveries",
    summary="A product's webhook delivery log, newest first",
    permission=Permission.PRODUCTS_READ,
    query=DeliveryQuery,
    response=DeliveryPage,
    errors=(404, 422),
)
async def list_webhook_deliveries(call: Call[Input, DeliveryQuery]) -> DeliveryPage:
    q = call.query
    page = await service.list_deliveries(call.id(), status=q.status, cursor=q.cursor, limit=q.limit)
    return DeliveryPage(
        items=[DeliveryOut.model_validate(d) for d in page.items], next_cursor=page.next_cursor
    )


@deliveries.post(
    "/{id}/retry",
    summary="Try a dead webhook delivery again",
    permission=Permission.PRODUCTS_WRITE,
    response=DeliveryOut,
    errors=(404, 409),
)
async def retry_webhook_delivery(call: Call[Input, Input]) -> DeliveryOut:
    """Only a dead delivery (out of attempts) can be retried (409 otherwise); it gets a
    fresh set of attempts, the first one due now."""
    return DeliveryOut.model_validate(await service.retry_delivery(call.id(), actor=call.actor))
