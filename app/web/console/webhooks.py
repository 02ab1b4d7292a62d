"""A product's webhooks in the console: where events go, the signing secret (shown once
when made), and the delivery log with a retry button for dead deliveries.

The log refreshes itself every few seconds while deliveries are pending (htmx asks for
the log fragment alone), so an admin who pressed retry sees it go through.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants.errors import InvalidInputError, NotFoundError
from tenants.permissions import Permission
from tenants.products.service import get_product
from tenants.secrets import SecretBox
from tenants.webhooks import service
from tenants.webhooks.models import DeliveryStatus
from tenants.webhooks.rules import rotation_problem

LOG_SIZE = 50


def _id(ctx: PageContext, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params[name])
    except ValueError:
        raise NotFoundError("there is no such page") from None


def _status(ctx: PageContext) -> DeliveryStatus | None:
    try:
        return DeliveryStatus(ctx.request.query_params.get("status", ""))
    except ValueError:
        return None


async def _log_context(ctx: PageContext, product_id: uuid.UUID) -> dict[str, Any]:
    status = _status(ctx)
    view = ListView.parse(
        f"/console/products/{product_id}/webhooks",
        ctx.request.query_params,
        sortable=("created_at",),
        default_sort="-created_at",
        filters={"status": status.value if status else ""},
        default_size=LOG_SIZE,
    )
    log = await service.list_deliveries(
        product_id,
        status=status,
        cursor=view.cursor,
        limit=view.size,
        oldest_first=not view.sort.descending,
    )
    counts = await service.delivery_counts(product_id)
    total = counts[status] if status is not None else sum(counts.values())
    return {
        "deliveries": log.items,
        **view.context(next_cursor=log.next_cursor, total=total, shown=len(log.items)),
        "counts": counts,
        "status_filter": status,
        "statuses": list(DeliveryStatus),
        "pending": counts[DeliveryStatus.PENDING] > 0,
    }


def routes(web: Web) -> list[BaseRoute]:
    def box() -> SecretBox:
        return service.secret_box(web.settings.secret_key)

    async def render(
        ctx: PageContext, product_id: uuid.UUID, http_status: int = 200, **extra: Any
    ) -> Response:
        product = await get_product(product_id)
        return ctx.render(
            "console/webhooks.html",
            http_status,
            product=product,
            previous_until=service.previous_secret_until(product),
            rotate_problem=rotation_problem(
                product.webhook_url, product.webhook_secret is not None
            ),
            **await _log_context(ctx, product.id),
            **extra,
        )

    @page(web, permission=Permission.PRODUCTS_READ)
    async def webhooks_page(ctx: PageContext) -> Response:
        return await render(ctx, _id(ctx))

    @page(web, permission=Permission.PRODUCTS_READ)
    async def webhooks_log(ctx: PageContext) -> Response:
        """The delivery log alone, polled by the page while deliveries are pending."""
        product = await get_product(_id(ctx))
        return ctx.render(
            "console/webhook_log.html", product=product, **await _log_context(ctx, product.id)
        )

    @page(web, permission=Permission.PRODUCTS_WRITE)
    async def save_url(ctx: PageContext) -> Response:
        """Save the address; a refused one is shown again beside the reason (422)."""
        product_id = _id(ctx)
        url = (ctx.form.get("url") or "").strip()
        try:
            product, secret = await service.set_webhook_url(
                product_id, url, box=box(), actor=ctx.actor
            )
        except InvalidInputError as error:
            reason = "; ".join(f.reason for f in error.fields) or error.message
            return await render(ctx, product_id, url_error=reason, url_value=url, http_status=422)
        if secret is None:
            return ctx.redirect(f"/console/products/{product.id}/webhooks", "Saved the address.")
        return await render(ctx, product.id, new_secret=secret)

    @page(web, permission=Permission.PRODUCTS_WRITE)
    async def clear_url(ctx: PageContext) -> Response:
        """Ask first (the product stops hearing of changes), then turn webhooks off."""
        if not ctx.confirmed:
            product = await get_product(_id(ctx))
            page = f"/console/products/{product.id}/webhooks"
            if product.webhook_url is None:
                return ctx.redirect(page, "Webhooks to this product are already off.")
            return ctx.confirm(
                title=f"Turn webhooks to {product.name} off?",
                consequences=[
                    f"{product.name} stops being told of changes here (members joining, "
                    f"changing and leaving, policies) at {product.webhook_url}, until an "
                    "address is saved again.",
                    "Deliveries not made yet stop and are marked dead; they can be sent "
                    "again from the delivery log once an address is back.",
                    "The signing secret is kept, so the product needs no new one then.",
                ],
                button="Turn webhooks off",
                back=page,
            )
        product = await service.clear_webhook_url(_id(ctx), actor=ctx.actor)
        return ctx.redirect(
            f"/console/products/{product.id}/webhooks", "Webhooks to this product are off."
        )

    @page(web, permission=Permission.PRODUCTS_WRITE)
    async def rotate(ctx: PageContext) -> Response:
        product, secret = await service.rotate_secret(
            _id(ctx), box=box(), actor=ctx.actor, only_while_on=True
        )
        return await render(ctx, product.id, new_secret=secret, rotated=True)

    @page(web, permission=Permission.PRODUCTS_WRITE)
    async def retry(ctx: PageContext) -> Response:
        delivery = await service.retry_delivery(_id(ctx), actor=ctx.actor)
        return ctx.redirect(
            f"/console/products/{delivery.product_id}/webhooks",
            f"Delivery of {delivery.topic} queued again.",
        )

    return [
        Route("/console/products/{id}/webhooks", webhooks_page, methods=["GET"]),
        Route("/console/products/{id}/webhooks/log", webhooks_log, methods=["GET"]),
        Route("/console/products/{id}/webhooks/url", save_url, methods=["POST"]),
        Route("/console/products/{id}/webhooks/clear", clear_url, methods=["POST"]),
        Route("/console/products/{id}/webhooks/rotate", rotate, methods=["POST"]),
        Route("/console/webhook-deliveries/{id}/retry", retry, methods=["POST"]),
    ]
