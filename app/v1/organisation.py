"""The calling organisation itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import Input, Name, Output, absent, changes_of
from tenants.organisations import service
from tenants.organisations.models import OrganisationKind, OrganisationStatus
from tenants.permissions import Permission

router = ApiRouter("/v1/organisation", "organisation")

Domain = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=253)]


class OrganisationOut(Output):
    id: uuid.UUID
    slug: str
    name: str
    kind: OrganisationKind
    domains: list[str]
    status: OrganisationStatus
    created_at: datetime
    updated_at: datetime


class OrganisationPatch(Input):
    name: Name = Field(default_factory=absent)
    domains: list[Domain] = Field(default_factory=absent, max_length=100)


@router.get(
    "",
    summary="Get the organisation",
    permission=Permission.ORGANISATION_READ,
    response=OrganisationOut,
)
async def get_organisation(call: Call[Input, Input]) -> OrganisationOut:
    return OrganisationOut.model_validate(await service.get_current_organisation())


@router.patch(
    "",
    summary="Change the organisation's name or verified domains",
    permission=Permission.ORGANISATION_WRITE,
    body=OrganisationPatch,
    response=OrganisationOut,
    errors=(409, 422),
)
async def update_organisation(call: Call[OrganisationPatch, Input]) -> OrganisationOut:
    org = await service.update_organisation(changes_of(call.body), actor=call.actor)
    return OrganisationOut.model_validate(org)
