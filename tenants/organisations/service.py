"""Creating and reading organisations (the tenants)."""

from __future__ import annotations

import re
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.domains import rules as domain_rules
from tenants.domains import service as domain_service
from tenants.errors import ConflictError, FieldProblem, InvalidInputError, NotFoundError
from tenants.identity import changes as identity
from tenants.ids import OrgId
from tenants.members import preferences
from tenants.organisations import days
from tenants.organisations.models import Organisation, OrganisationKind
from tenants.units.service import create_root_unit

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalise_domains(domains: list[str], *, field: str = "domains") -> list[str]:
    """Lower-cased, de-duplicated, validated; InvalidInputError names the bad entry."""
    result: list[str] = []
    for index, raw in enumerate(domains):
        domain = domain_rules.normalise(raw)
        if domain is None:
            raise InvalidInputError(
                f"{raw!r} is not a domain name",
                fields=[FieldProblem(f"{field}[{index}]", "expected a domain like example.org")],
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
        "status": org.status,
        "policy_notice_days": org.policy_notice_days,
        "time_zone": org.time_zone,
    }


async def id_by_slug(slug: str) -> OrgId | None:
    """The organisation with this slug, looked up without a tenant (SECURITY DEFINER)."""
    from tortoise import connections

    _, rows = await connections.get("default").execute_query(
        "SELECT organisation_id_by_slug($1) AS id", [slug]
    )
    return OrgId(rows[0]["id"]) if rows and rows[0]["id"] else None


async def id_by_domain(domain: str) -> OrgId | None:
    """The active organisation that has proven this exact email domain, if any (a pending
    domain routes nothing, nor does a parent or child of a proven one)."""
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
    domains_proof: domain_rules.DomainProof | None = None,
) -> Organisation:
    """Create an organisation with its audit chain and root unit, in its own transaction
    — or in the caller's, when the caller opened ``tenant_transaction(org_id)`` to create
    more in the same breath (all or nothing, e.g. the demo seed).

    ``domains`` are added pending (each to be proven in DNS), unless ``domains_proof``
    is ``DomainProof.SEED``: demo data and test fixtures, whose domains count at once.

    Raises ConflictError when the slug is taken (checked across organisations by a
    SECURITY DEFINER lookup, since the runtime role cannot see other organisations) or a
    domain belongs to another organisation.
    """
    check_slug(slug)
    domains = normalise_domains(domains)
    if await id_by_slug(slug) is not None:
        raise ConflictError(
            f"an organisation with slug {slug!r} exists",
            fields=[FieldProblem("slug", "is already taken")],
        )
    org_id = org_id or OrgId(uuid.uuid4())
    async with db.tenant_transaction(org_id):
        org = await Organisation.create(id=org_id, slug=slug, name=name, kind=kind)
        await audit.start_chain(org_id)
        await audit.record(
            "organisation.created", "organisation", org_id, actor=actor, after=snapshot(org)
        )
        await create_root_unit(name, actor=actor)
        for index, domain in enumerate(domains):
            add = (
                domain_service.seed_domain
                if domains_proof is domain_rules.DomainProof.SEED
                else domain_service.add_domain
            )
            await add(domain, actor=actor, field=f"domains[{index}]")
    return org


async def get_current_organisation() -> Organisation:
    org = await Organisation.filter(id=db.current_org()).first()
    if org is None:
        raise NotFoundError("the organisation does not exist")
    return org


async def time_zone() -> ZoneInfo:
    """The zone of the current organisation's days (``tenants.organisations.days``)."""
    _, rows = await db.connection().execute_query(
        "SELECT time_zone FROM organisations WHERE id = $1", [db.current_org()]
    )
    return ZoneInfo(rows[0]["time_zone"] if rows else days.DEFAULT_ZONE)


async def update_organisation(changes: dict[str, Any], *, actor: Actor) -> Organisation:
    """Change the name, the days of notice of scheduled policy changes or the time zone of
    the organisation's days; returns early when nothing changes. A new zone applies to the
    days named from then on: a departure under way keeps the instants it was started with.
    (Domains are added and proven one by one: ``tenants.domains.service``.)"""
    org = await Organisation.filter(id=db.current_org()).select_for_update().first()
    if org is None:
        raise NotFoundError("the organisation does not exist")
    before = snapshot(org)
    if "name" in changes:
        org.name = changes["name"]
    if "policy_notice_days" in changes:
        org.policy_notice_days = changes["policy_notice_days"]
    if "time_zone" in changes:
        org.time_zone = preferences.time_zone_name(changes["time_zone"])
    old, new = audit.changed_fields(before, snapshot(org))
    if not new:
        return org
    await org.save()
    await audit.record(
        "organisation.updated", "organisation", org.id, actor=actor, before=old, after=new
    )
    if "name" in new:  # what the identity backend mirrors
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
    """The open organisation's row counts, kept by triggers (migration 0018) so reading
    them costs the same at any size: ``members``, ``units``, ``groups``, ``products`` and
    ``members.<status>``; a name with nothing counted yet is absent (read it as 0)."""
    from tenants.members.lifecycle import MemberStatus

    # By name: the organisation also keeps a counter per unit (``unit_members.<id>``,
    # migration 0023), which this must not read.
    names = ["members", "units", "groups", "products", *(f"members.{s}" for s in MemberStatus)]
    rows = await db.fetch(
        "SELECT name, n FROM tenant_counters WHERE tenant_id = $1 AND name = ANY($2::text[])",
        db.current_org(),
        names,
    )
    return {str(r["name"]): int(r["n"]) for r in rows}
