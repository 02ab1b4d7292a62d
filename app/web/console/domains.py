"""The organisation's email domains: the TXT record that proves each (with a copy
button), its status, and checking it now."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.settings import confirm_page, confirmed_count
from app.web.pages import PageContext, Web, page
from tenants.domains import rules
from tenants.domains import service as domains
from tenants.domains.dns import DnsUnavailableError
from tenants.domains.models import Domain
from tenants.errors import ConflictError, InvalidInputError, NotFoundError
from tenants.permissions import Permission
from tenants.sso import service as sso
from tenants.text import counted


async def removal_consequences(domain: Domain) -> list[str]:
    """What removing ``domain`` breaks besides sign-in through the identity provider (which
    the safety net counts): finding the organisation by email address, and the proof."""
    if domain.status not in rules.OWNED:
        return [f"{domain.name} is not verified yet: nothing depends on it."]
    at_domain = await domains.members_at(domain.name)
    return [
        f"The sign-in page no longer finds the organisation from an address at {domain.name}:"
        f" {counted(at_domain, 'member')} {'has' if at_domain == 1 else 'have'} one, and must use"
        " the organisation's own sign-in address instead.",
        f"Another organisation can then verify {domain.name}. Verifying it here again takes a"
        " new TXT record in its DNS.",
    ]


def routes(web: Web) -> list[BaseRoute]:
    async def render(
        ctx: PageContext,
        *,
        name: str = "",
        name_error: str | None = None,
        check: tuple[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        rows = [
            {
                "domain": d,
                "record_names": rules.record_names(d.name),
                "record_value": rules.record_value(d.token),
            }
            for d in await domains.list_domains()
        ]
        return ctx.render(
            "console/domains.html",
            status,
            domains=rows,
            name=name,
            name_error=name_error,
            check=check,
        )

    @page(web, permission=Permission.ORGANISATION_READ)
    async def domains_page(ctx: PageContext) -> Response:
        return await render(ctx)

    @page(web, permission=Permission.ORGANISATION_WRITE)
    async def add(ctx: PageContext) -> Response:
        name = ctx.form.get("name", "")[:300]
        try:
            added = await domains.add_domain(name, actor=ctx.actor, field="name")
        except (InvalidInputError, ConflictError) as exc:
            reason = exc.fields[0].reason if exc.fields else exc.message
            return await render(ctx, name=name, name_error=reason, status=400)
        if added.status in rules.OWNED:
            return ctx.redirect("/console/domains", f"{added.name} is already verified.")
        return ctx.redirect(
            "/console/domains", f"Added {added.name}: publish its TXT record, then check it."
        )

    @page(web, permission=Permission.ORGANISATION_WRITE)
    async def verify(ctx: PageContext) -> Response:
        name = rules.normalise(ctx.form.get("name", "")[:300]) or ""
        try:
            domain = await domains.verify_domain(
                name, lookup=web.settings.dns_lookup(), actor=ctx.actor
            )
        except (InvalidInputError, ConflictError, DnsUnavailableError, NotFoundError) as exc:
            return await render(ctx, check=(name, exc.message), status=400)
        return ctx.redirect("/console/domains", f"{domain.name} is verified.")

    @page(web, permission=Permission.ORGANISATION_WRITE)
    async def remove(ctx: PageContext) -> Response:
        name = rules.normalise(ctx.form.get("name", "")[:300]) or ""
        confirmed = confirmed_count(ctx.form)
        if confirmed is None and not ctx.confirmed:
            domain = await domains.get_domain(name)
            preview = await sso.preview_domain_removal(name)
            consequences = await removal_consequences(domain)
            if preview.losing:
                return confirm_page(
                    ctx,
                    preview,
                    what=f"Removing {name} takes sign-in from them. " + " ".join(consequences),
                    action="/console/domains/remove",
                    back="/console/domains",
                )
            return ctx.confirm(
                title=f"Remove {name}?",
                consequences=consequences,
                button=f"Remove {name}",
                back="/console/domains",
            )
        await sso.remove_domain(name, actor=ctx.actor, confirm_losing=confirmed)
        return ctx.redirect("/console/domains", f"Removed {name}.")

    return [
        Route("/console/domains", domains_page, methods=["GET"]),
        Route("/console/domains", add, methods=["POST"]),
        Route("/console/domains/verify", verify, methods=["POST"]),
        Route("/console/domains/remove", remove, methods=["POST"]),
    ]
