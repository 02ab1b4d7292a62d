"""Creating and reading organisations (the tenants)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, InvalidInputError, NotFoundError
from tenants.identity import changes as identity
from tenants.ids import OrgId
from tenants.organisations.models import Organisation, OrganisationKind
from tenants.units.service import create_root_unit

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def normalise_domains(domains: list[str]) -> list[str]:
    """Lower-cased, de-duplicated, validated; InvalidInputError names the bad entry."""
    result: list[str] = []
    for index, raw in enumerate(domains):
        domain = raw.strip().lower().rstrip(".")
        if not DOMAIN.match(domain):
            raise InvalidInputError(
                f"{raw!r} is not a domain name",
                fields=[FieldProblem(f"domains[{index}]", "expected a domain like example.org")],
            )
        if domain not in result:
            result.append(domain)
    return result


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise InvalidInputError(
            f"{slug!r} is not a valid slug",
            fields=[FieldProblem("slug", "lower-case letters, digits and hyphens, 1 to 63")],
        )
    return slug


def snapshot(org: Organisation) -> dict[str, Any]:
    return {
        "slug": org.slug,
        "name": org.name,
        "kind": org.kind,
        "domains": org.domains,
        "status": org.status,
    }


async def id_by_slug(slug: str) -> OrgId | None:
    """The organisation with this slug, looked up without a tenant (SECURITY DEFINER)."""
    from tortoise import connections

    _, rows = await connections.get("default").execute_query(
        "SELECT organisation_id_by_slug($1) AS id", [slug]
    )
    return OrgId(rows[0]["id"]) if rows and rows[0]["id"] else None


async def id_by_domain(domain: str) -> OrgId | None:
    """The active organisation that verified this email domain, if any."""
    from tortoise import connections

    _, rows = await connections.get("default").execute_query(
        "SELECT organisation_id_by_domain($1) AS id", [domain]
    )
    return OrgId(rows[0]["id"]) if rows and rows[0]["id"] else None


async def create_organisation(
    *,
    slug: str,
    name: str,
    kind: OrganisationKind,
    domains: list[str],
    actor: Actor,
    org_id: OrgId | None = None,
) -> Organisation:
    """Create an organisation with its audit chain and root unit, in its own transaction
    — or in the caller's, when the caller opened ``tenant_transaction(org_id)`` to create
    more in the same breath (all or nothing, e.g. the demo seed).

    Raises ConflictError when the slug is taken (checked across organisations by a
    SECURITY DEFINER lookup, since the runtime role cannot see other organisations).
    """
    check_slug(slug)
    domains = normalise_domains(domains)
    if await id_by_slug(slug) is not None:
        raise ConflictError(
            f"an organisation with slug {slug!r} exists",
            fields=[FieldProblem("slug", "is already taken")],
        )
    for index, domain in enumerate(domains):
        if await id_by_domain(domain) is not None:
            raise ConflictError(
                f"the domain {domain} is verified by another organisation",
                fields=[FieldProblem(f"domains[{index}]", "belongs to another organisation")],
            )
    org_id = org_id or OrgId(uuid.uuid4())
    async with db.tenant_transaction(org_id):
        org = await Organisation.create(id=org_id, slug=slug, name=name, kind=kind, domains=domains)
        await audit.start_chain(org_id)
        await audit.record(
            "organisation.created", "organisation", org_id, actor=actor, after=snapshot(org)
        )
        await create_root_unit(name, actor=actor)
    return org


async def get_current_organisation() -> Organisation:
    org = await Organisation.filter(id=db.current_org()).first()
    if org is None:
        raise NotFoundError("the organisation does not exist")
    return org


async def update_organisation(changes: dict[str, Any], *, actor: Actor) -> Organisation:
    """Change name or domains; returns early when nothing changes."""
    org = await Organisation.filter(id=db.current_org()).select_for_update().first()
    if org is None:
        raise NotFoundError("the organisation does not exist")
    before = snapshot(org)
    if "name" in changes:
        org.name = changes["name"]
    if "domains" in changes:
        domains = normalise_domains(changes["domains"])
        for index, domain in enumerate(domains):
            owner = await id_by_domain(domain)
            if owner is not None and owner != org.id:
                raise ConflictError(
                    f"the domain {domain} is verified by another organisation",
                    fields=[FieldProblem(f"domains[{index}]", "belongs to another organisation")],
                )
        org.domains = domains
    old, new = audit.changed_fields(before, snapshot(org))
    if not new:
        return org
    await org.save()
    await audit.record(
        "organisation.updated", "organisation", org.id, actor=actor, before=old, after=new
    )
    await identity.organisation_changed("updated")
    return org


async def set_local_sign_in(enabled: bool, *, actor: Actor) -> Organisation:
    """Allow or forbid members' password sign-in (the break-glass admin is unaffected)."""
    org = await Organisation.filter(id=db.current_org()).select_for_update().first()
    if org is None:
        raise NotFoundError("the organisation does not exist")
    if org.local_sign_in == enabled:
        return org
    org.local_sign_in = enabled
    await org.save(update_fields=["local_sign_in", "updated_at"])
    await audit.record(
        "organisation.local_sign_in_changed",
        "organisation",
        org.id,
        actor=actor,
        before={"local_sign_in": not enabled},
        after={"local_sign_in": enabled},
    )
    return org


async def counters() -> dict[str, int]:
    """The open organisation's row counts, kept by triggers (migration 0015) so reading
    them costs the same at any size: ``members``, ``units``, ``groups``, ``products`` and
    ``members.<status>``; a name with nothing counted yet is absent (read it as 0)."""
    rows = await db.fetch(
        "SELECT name, n FROM tenant_counters WHERE tenant_id = $1", db.current_org()
    )
    return {str(r["name"]): int(r["n"]) for r in rows}
