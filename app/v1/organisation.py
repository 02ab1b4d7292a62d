"""The calling organisation itself."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.api import ApiRouter, Call
from app.v1.common import Input, Name, Output, absent, changes_of
from tenants.domains import service as domains
from tenants.organisations import service
from tenants.organisations.models import Organisation, OrganisationKind, OrganisationStatus
from tenants.permissions import Permission

router = ApiRouter("/v1/organisation", "organisation")


class OrganisationOut(Output):
    id: uuid.UUID
    slug: str
    name: str
    kind: OrganisationKind
    domains: list[str] = Field(
        description="Its proven email domains (verified or flagged); see /v1/domains."
    )
    status: OrganisationStatus
    policy_notice_days: int = Field(
        description="Days before a scheduled policy change that the members it affects are "
        "emailed what changes for them."
    )
    time_zone: str = Field(
        description="The IANA time zone of the organisation's days: a member's last day, "
        "the day a policy takes effect and a review's due day begin and end at midnight "
        "there (UTC unless set)."
    )
    created_at: datetime
    updated_at: datetime


class OrganisationPatch(Input):
    name: Name = Field(default_factory=absent)
    policy_notice_days: int = Field(
        default_factory=absent,
        ge=0,
        le=90,
        description="Days of advance notice of scheduled policy changes (0 to 90).",
    )
    time_zone: str = Field(
        default_factory=absent,
        max_length=64,
        description="An IANA time zone such as Europe/Paris: days named from now on are "
        "this zone's (departures under way keep their instants).",
        examples=["Europe/Paris"],
    )


async def _out(org: Organisation) -> OrganisationOut:
    return OrganisationOut.model_validate(
        {**org.__dict__, "domains": await domains.owned_domains()}
    )


@router.get(
    "",
    summary="Get the organisation",
    permission=Permission.ORGANISATION_READ,
    response=OrganisationOut,
)
async def get_organisation(call: Call[Input, Input]) -> OrganisationOut:
    return await _out(await service.get_current_organisation())


@router.patch(
    "",
    summary="Change the organisation's name, its days of notice of policy changes or its time zone",
    permission=Permission.ORGANISATION_WRITE,
    body=OrganisationPatch,
    response=OrganisationOut,
    errors=(409, 422),
)
async def update_organisation(call: Call[OrganisationPatch, Input]) -> OrganisationOut:
    org = await service.update_organisation(changes_of(call.body), actor=call.actor)
    return await _out(org)
