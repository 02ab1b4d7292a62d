"""Adding, proving, re-checking and removing an organisation's email domains.

Who owns a domain is decided across organisations, which the runtime role cannot see: the
SECURITY DEFINER function ``domain_owner`` (migration 0017) answers it, and a partial
unique index on proven names settles two organisations proving one name at once.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.domains import rules
from tenants.domains.dns import TxtLookup
from tenants.domains.models import Domain
from tenants.domains.rules import OWNED, DomainProof, DomainStatus
from tenants.errors import ConflictError, FieldProblem, InvalidInputError, NotFoundError
from tenants.identity import changes as identity
from tenants.ids import OrgId
from tenants.jobs import service as jobs
from tenants.mail import service as mail
from tenants.members.roles import STAFF

RECHECK_JOB = "domains.recheck"
CONSOLE_PATH = "/console/domains"


def parse(raw: str, *, field: str = "domain") -> str:
    """The normalised domain name; InvalidInputError naming ``field`` otherwise."""
    name = rules.normalise(raw)
    if name is None:
        raise InvalidInputError(
            f"{raw[:253]!r} is not a domain name",
            fields=[FieldProblem(field, "expected a domain like example.org")],
        )
    return name


async def owner_of(name: str) -> OrgId | None:
    """The organisation that owns (has proven) ``name``, whichever it is; None if nobody."""
    row = await db.fetch_one("SELECT domain_owner($1) AS id", name)
    return OrgId(row["id"]) if row and row["id"] else None


def snapshot(domain: Domain) -> dict[str, Any]:
    return {
        "name": domain.name,
        "status": domain.status.value,
        "proof": domain.proof.value if domain.proof else None,
    }


async def list_domains() -> list[Domain]:
    return list(await Domain.all().order_by("name"))


async def owned_domains() -> list[str]:
    """The current organisation's proven domains (verified or flagged), sorted."""
    rows = (
        await Domain.filter(status__in=list(OWNED)).order_by("name").values_list("name", flat=True)
    )
    return [str(r) for r in rows]


async def outside_domain(email: str) -> str | None:
    """The domain of ``email`` when the current organisation has not proven it (see
    ``rules.outside_domain``), else None. Reads only; the console asks before adding a
    member there, the API does not."""
    return rules.outside_domain(email, await owned_domains())


async def get_domain(name: str, *, for_update: bool = False) -> Domain:
    query = Domain.filter(name=name)
    if for_update:
        query = query.select_for_update()
    domain = await query.first()
    if domain is None:
        raise NotFoundError(f"the organisation has no domain {name}")
    return domain


async def _refuse_if_owned_elsewhere(name: str, field: str) -> None:
    owner = await owner_of(name)
    if owner is not None and owner != db.current_org():
        raise ConflictError(
            f"the domain {name} is verified by another organisation",
            fields=[FieldProblem(field, "belongs to another organisation")],
        )


async def add_domain(raw: str, *, actor: Actor, field: str = "domain") -> Domain:
    """Add a domain, pending until proven; the existing one when it is already added.

    Raises InvalidInputError for a malformed name and ConflictError when another
    organisation has proven it (a subdomain of another organisation's domain may be
    added: it needs its own proof).
    """
    name = parse(raw, field=field)
    existing = await Domain.filter(name=name).first()
    if existing is not None:
        return existing
    await _refuse_if_owned_elsewhere(name, field)
    domain = await Domain.create(
        tenant_id=db.current_org(), name=name, token=secrets.token_urlsafe(24)
    )
    await audit.record("domain.added", "domain", domain.id, actor=actor, after=snapshot(domain))
    return domain


async def seed_domain(raw: str, *, actor: Actor, field: str = "domain") -> Domain:
    """Add a domain as proven by whoever seeds the data (demo organisations, test
    fixtures), marked ``proof = seed``; never re-checked in DNS.

    Raises ConflictError when another organisation owns it.
    """
    domain = await add_domain(raw, actor=actor, field=field)
    if domain.status in OWNED:
        return domain
    await _refuse_if_owned_elsewhere(domain.name, field)
    domain.status = DomainStatus.VERIFIED
    domain.proof = DomainProof.SEED
    domain.verified_at = datetime.now(UTC)
    domain.last_check_result = "verified by seed"
    await domain.save()
    await audit.record("domain.verified", "domain", domain.id, actor=actor, after=snapshot(domain))
    await identity.organisation_changed("domain verified")
    return domain


async def _look_up(lookup: TxtLookup, domain: Domain) -> str | None:
    """Where the domain's record was found, or None."""
    for record_name in rules.record_names(domain.name):
        if rules.is_proven(await lookup.txt(record_name), domain.token):
            return record_name
    return None


async def _schedule_recheck(domain: Domain, due: datetime) -> None:
    domain.next_check_at = due
    await Domain.filter(id=domain.id).update(next_check_at=due)
    await jobs.enqueue(
        RECHECK_JOB,
        {"domain_id": str(domain.id), "due": due.isoformat()},
        key=f"domain:{domain.id}:recheck:{due.isoformat()}",
        run_at=due,
    )


async def verify_domain(name: str, *, lookup: TxtLookup, actor: Actor) -> Domain:
    """Look the domain's TXT record up now; the domain, proven, when it is there.

    Raises NotFoundError for a domain the organisation has not added, ConflictError when
    another organisation owns it, InvalidInputError (naming ``domain``) when the record
    is not found, and DnsUnavailableError when the resolvers do not answer. A failed
    attempt changes nothing.
    """
    domain = await get_domain(name, for_update=True)
    await _refuse_if_owned_elsewhere(domain.name, "domain")
    found_at = await _look_up(lookup, domain)
    if found_at is None:
        names = " or ".join(rules.record_names(domain.name))
        raise InvalidInputError(
            f"no TXT record {rules.record_value(domain.token)} was found at {names}",
            fields=[FieldProblem("domain", "the verification record is not published (yet)")],
        )
    before = snapshot(domain)
    now = datetime.now(UTC)
    was_owned = domain.status in OWNED
    domain.status = DomainStatus.VERIFIED
    domain.proof = DomainProof.DNS
    domain.verified_at = now if not was_owned or domain.verified_at is None else domain.verified_at
    domain.last_checked_at = now
    domain.flagged_at = None
    domain.last_check_result = f"record found at {found_at}"
    await domain.save()
    old, new = audit.changed_fields(before, snapshot(domain))
    if new:
        await audit.record(
            "domain.verified", "domain", domain.id, actor=actor, before=old, after=new
        )
    if not was_owned:
        await identity.organisation_changed("domain verified")
    await _schedule_recheck(domain, now + rules.RECHECK_EVERY)
    return domain


async def remove_domain(name: str, *, actor: Actor) -> None:
    """Remove the domain (pending or proven); NotFoundError when it was never added."""
    domain = await get_domain(name, for_update=True)
    before = snapshot(domain)
    await Domain.filter(id=domain.id).delete()
    await audit.record("domain.removed", "domain", domain.id, actor=actor, before=before)
    if domain.status in OWNED:
        await identity.organisation_changed("domain removed")


async def members_at(name: str) -> int:
    """How many of the organisation's members have an address at ``name`` (what the
    sign-in page finds the organisation by); asked once, by the confirmation of the
    domain's removal."""
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    row = await db.fetch_one(
        "SELECT count(*) AS n FROM members WHERE tenant_id = $1 AND email LIKE $2",
        db.current_org(),
        f"%@{escaped}",
    )
    return int(row["n"]) if row else 0


async def owner_emails() -> list[str]:
    """Addresses of the organisation's active owners (who answer for its domains)."""
    rows = await db.fetch(
        "SELECT email FROM members WHERE tenant_id = $1 AND status = 'active' "  # noqa: S608 (STAFF is a constant)
        f"AND {STAFF} AND roles ? 'owner' ORDER BY email",
        db.current_org(),
    )
    return [r["email"] for r in rows]


async def recheck_domain(
    domain_id: uuid.UUID, *, due: datetime | None, lookup: TxtLookup, actor: Actor
) -> Domain | None:
    """The periodic re-check: look the record up again; a proven domain whose record has
    gone is flagged (kept, audited, the owners emailed), a flagged one whose record is back
    is verified again. Schedules the next check. Does nothing (None) for a domain that was
    removed, is not proven, was seeded, or whose checks were rescheduled since ``due``.
    DnsUnavailableError propagates (the job retries; nothing is concluded)."""
    domain = await Domain.filter(id=domain_id).select_for_update().first()
    if domain is None or domain.status not in OWNED or domain.proof != DomainProof.DNS:
        return None
    if due is not None and domain.next_check_at is not None and domain.next_check_at != due:
        return None
    found_at = await _look_up(lookup, domain)
    step = rules.after_recheck(domain.status, found_at is not None)
    now = datetime.now(UTC)
    before = snapshot(domain)
    domain.status = step.status
    domain.last_checked_at = now
    if found_at is not None:
        domain.flagged_at = None
        domain.last_check_result = f"record found at {found_at}"
    else:
        domain.flagged_at = domain.flagged_at or now
        domain.last_check_result = "the verification record has disappeared"
    await domain.save()
    if step.event is not None:
        old, new = audit.changed_fields(before, snapshot(domain))
        await audit.record(
            f"domain.{step.event}", "domain", domain.id, actor=actor, before=old, after=new
        )
    if step.event == "flagged":
        await mail.send_later(
            "domain_flagged",
            to=await owner_emails(),
            context={
                "domain": domain.name,
                "record_name": rules.record_names(domain.name)[1],
                "record_value": rules.record_value(domain.token),
                "link_path": CONSOLE_PATH,
            },
            key=f"domain:{domain.id}:flagged:{now.isoformat()}",
        )
    await _schedule_recheck(domain, now + step.next_check_in)
    return domain
