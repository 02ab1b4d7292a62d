"""The organisation's email domains: add one (the answer says which TXT record proves
it), verify it against DNS, list and remove them. Only proven domains route sign-ins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import ConfirmLosing, Input, Output
from app.v1.sso import SignInLossOut
from tenants.domains import rules, service
from tenants.domains.models import Domain
from tenants.domains.rules import DomainProof, DomainStatus
from tenants.errors import NotFoundError
from tenants.permissions import Permission
from tenants.sso import service as sso

router = ApiRouter("/v1/domains", "domains")


class DnsRecord(Output):
    type: str = "TXT"
    names: list[str] = Field(
        description="Publish it at either name (the first is looked up first)."
    )
    value: str


class DomainOut(Output):
    name: str
    status: DomainStatus = Field(
        description="pending: not proven, routes nothing; verified: proven; flagged: was "
        "proven but its record disappeared at the last periodic check (still the "
        "organisation's until fixed or removed; the owners were emailed)."
    )
    proof: DomainProof | None = Field(
        description="dns, or seed for demo data (never checked in DNS)."
    )
    record: DnsRecord
    verified_at: datetime | None
    last_checked_at: datetime | None
    flagged_at: datetime | None
    last_check_result: str | None

    @classmethod
    def of(cls, domain: Domain) -> DomainOut:
        return cls(
            name=domain.name,
            status=domain.status,
            proof=domain.proof,
            record=DnsRecord(
                names=list(rules.record_names(domain.name)),
                value=rules.record_value(domain.token),
            ),
            verified_at=domain.verified_at,
            last_checked_at=domain.last_checked_at,
            flagged_at=domain.flagged_at,
            last_check_result=domain.last_check_result,
        )


class DomainList(Output):
    items: list[DomainOut]


class DomainIn(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]


@router.get(
    "",
    summary="List the organisation's domains",
    permission=Permission.ORGANISATION_READ,
    response=DomainList,
)
async def list_domains(call: Call[Input, Input]) -> DomainList:
    return DomainList(items=[DomainOut.of(d) for d in await service.list_domains()])


@router.post(
    "",
    summary="Add a domain; the answer names the TXT record that proves it",
    permission=Permission.ORGANISATION_WRITE,
    body=DomainIn,
    response=DomainOut,
    status=201,
    errors=(409,),
)
async def add_domain(call: Call[DomainIn, Input]) -> DomainOut:
    """Idempotent: adding a domain again answers the existing one. 409 when another
    organisation has proven it."""
    return DomainOut.of(await service.add_domain(call.body.name, actor=call.actor, field="name"))


@router.post(
    "/{domain}/verify",
    summary="Look the domain's TXT record up now and verify it",
    permission=Permission.ORGANISATION_WRITE,
    response=DomainOut,
    errors=(409, 422, 503),
)
async def verify_domain(call: Call[Input, Input]) -> DomainOut:
    """422 when the record is not found (nothing changes), 409 when another organisation
    owns the domain, 503 when the DNS resolvers do not answer."""
    lookup = call.request.app.state.settings.dns_lookup()
    return DomainOut.of(await service.verify_domain(_name(call), lookup=lookup, actor=call.actor))


class RemovalQuery(Input):
    confirm_losing: ConfirmLosing = Field(
        None,
        description="When removing the domain takes sign-in from members, their count as "
        "the removal preview answered it.",
    )


@router.post(
    "/{domain}/removal-preview",
    summary="Who would lose sign-in if the domain were removed (nothing changes)",
    permission=Permission.ORGANISATION_WRITE,
    response=SignInLossOut,
    errors=(404,),
)
async def preview_domain_removal(call: Call[Input, Input]) -> SignInLossOut:
    name = _name(call)
    await service.get_domain(name)
    return SignInLossOut.of(await sso.preview_domain_removal(name))


@router.delete(
    "/{domain}",
    summary="Remove a domain",
    permission=Permission.ORGANISATION_WRITE,
    query=RemovalQuery,
    status=204,
    errors=(404, 409, 422),
)
async def remove_domain(call: Call[Input, RemovalQuery]) -> None:
    """409 when removing it would lock out every owner and none has a break-glass
    password; 422 naming ``confirm_losing`` when members would lose sign-in and it is not
    their count."""
    await sso.remove_domain(_name(call), actor=call.actor, confirm_losing=call.query.confirm_losing)


def _name(call: Call[Any, Any]) -> str:
    """The domain in the path; a malformed one names nothing (404), like a malformed id."""
    raw = call.text("domain")
    name = rules.normalise(raw)
    if name is None:
        raise NotFoundError(f"the organisation has no domain {raw[:253]!r}")
    return name
