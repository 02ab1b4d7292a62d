"""The console's "Identity backend" page: where members are mirrored (local or a Keycloak
realm), drift repair, and the Shared Signals transmitter whose security events act here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants.errors import FieldProblem, InvalidInputError
from tenants.identity import service as identity
from tenants.identity import sync
from tenants.identity.errors import BackendNotConfiguredError
from tenants.identity.models import BackendKind
from tenants.identity.setup import UnmanagedPolicy
from tenants.ids import OrgId
from tenants.permissions import Permission
from tenants.signals import service as signals

PAGE = "/console/identity"


def _url(form: dict[str, str], name: str, what: str) -> str:
    value = form.get(name, "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidInputError(
            f"{what} must be a URL", fields=[FieldProblem(name, "expected https://…")]
        )
    return value


def backend_changes(form: dict[str, str]) -> dict[str, Any]:
    """Form fields to identity backend changes; InvalidInputError naming the bad field."""
    try:
        kind = BackendKind(form.get("kind", "local"))
    except ValueError:
        raise InvalidInputError(
            "choose local or keycloak", fields=[FieldProblem("kind", "is not a backend")]
        ) from None
    if kind is BackendKind.LOCAL:
        return {"kind": kind}
    changes: dict[str, Any] = {
        "kind": kind,
        "server_url": _url(form, "server_url", "the Keycloak URL").rstrip("/"),
        "realm": form.get("realm", "").strip() or None,
        "client_id": form.get("client_id", "").strip() or None,
    }
    if form.get("client_secret"):
        changes["client_secret"] = form["client_secret"]
    return changes


def transmitter_changes(form: dict[str, str]) -> dict[str, Any]:
    audience = form.get("audience", "").strip()
    if not audience:
        raise InvalidInputError(
            "the audience is required", fields=[FieldProblem("audience", "is empty")]
        )
    return {
        "issuer": _url(form, "issuer", "the issuer"),
        "jwks_uri": _url(form, "jwks_uri", "the JWKS URI"),
        "audience": audience,
        "enabled": form.get("enabled") == "on",
    }


def routes(web: Web) -> list[BaseRoute]:
    def box() -> Any:
        return identity.secret_box(web.settings.secret_key)

    async def render(ctx: PageContext, **extra: Any) -> Response:
        config = await identity.get_config()
        return ctx.render(
            "console/identity.html",
            backend=identity.config_view(config),
            transmitter=await signals.get_transmitter(),
            receiver_url=f"{web.settings.base_url}/ssf/{ctx.organisation.slug}/events",
            claims_url=f"{web.settings.base_url}/v1/claims",
            **extra,
        )

    @page(web, permission=Permission.SSO_READ)
    async def identity_page(ctx: PageContext) -> Response:
        return await render(ctx)

    @page(web, permission=Permission.SSO_WRITE)
    async def set_up(ctx: PageContext) -> Response:
        """Check the realm and prepare it (``tenantry identity setup``); the checks are
        shown on the page, each with its fix."""
        sync.ensure_configured(web.settings.secret_key)
        policy = (
            UnmanagedPolicy.ADMIN_EDIT
            if ctx.form.get("unmanaged") == "on"
            else UnmanagedPolicy.DECLARE
        )
        try:
            checks = await sync.set_up(
                OrgId(ctx.organisation.id), prepare=True, policy=policy, actor=ctx.actor
            )
        except BackendNotConfiguredError:
            # As reconcile answers: nothing is wrong, there is just no realm to prepare.
            return ctx.redirect(
                PAGE, "Nothing to set up: the identity backend is local (nothing is mirrored)."
            )
        return await render(ctx, setup_checks=checks)

    @page(web, permission=Permission.SSO_WRITE)
    async def save_backend(ctx: PageContext) -> Response:
        await identity.save_config(backend_changes(ctx.form), box=box(), actor=ctx.actor)
        return ctx.redirect(PAGE, "Saved the identity backend.")

    @page(web, permission=Permission.SSO_WRITE)
    async def reconcile(ctx: PageContext) -> Response:
        queued = await identity.request_reconcile(actor=ctx.actor)
        message = (
            "Reconcile queued: the worker compares the backend with Tenantry and fixes drift."
            if queued
            else "Nothing to reconcile: the identity backend is local."
        )
        return ctx.redirect(PAGE, message)

    @page(web, permission=Permission.SSO_WRITE)
    async def save_transmitter(ctx: PageContext) -> Response:
        await signals.save_transmitter(transmitter_changes(ctx.form), actor=ctx.actor)
        return ctx.redirect(PAGE, "Saved the Shared Signals transmitter.")

    return [
        Route(PAGE, identity_page, methods=["GET"]),
        Route(f"{PAGE}/backend", save_backend, methods=["POST"]),
        Route(f"{PAGE}/reconcile", reconcile, methods=["POST"]),
        Route(f"{PAGE}/setup", set_up, methods=["POST"]),
        Route(f"{PAGE}/transmitter", save_transmitter, methods=["POST"]),
    ]
