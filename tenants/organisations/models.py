"""The organisation is the tenant: its own row is visible only inside its transaction.

Its email domains live in ``tenants.domains`` (each proven on its own)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class OrganisationKind(StrEnum):
    EMPLOYER = "employer"
    SCHOOL = "school"


class OrganisationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Organisation(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    slug = fields.CharField(max_length=63, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(OrganisationKind, max_length=16)
    status = fields.CharEnumField(
        OrganisationStatus, max_length=16, default=OrganisationStatus.ACTIVE
    )
    #: Members may sign in with a local password (off by default; SSO is the normal way).
    local_sign_in = fields.BooleanField(default=False)
    #: Bumped by every change of the rule set (the number in the policy history).
    policy_version = fields.IntField(default=0)
    #: Bumped when units or groups change in ways resolution sees (tree, priorities).
    #: Compiled policies are keyed on both versions.
    structure_version = fields.IntField(default=0)
    #: Days before a scheduled policy change takes effect that the members it affects are
    #: emailed what changes for them (``tenants.policy.schedule``).
    policy_notice_days = fields.IntField(default=7)
    #: The IANA zone of the organisation's days (``tenants.organisations.days``).
    time_zone = fields.CharField(max_length=64, default="UTC")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "organisations"
