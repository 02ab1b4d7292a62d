"""SCIM provisioning: the organisation's provisioning rules and the SCIM side of members
and groups.

The model operations were generated (``tortoise makemigrations -n scim_provisioning``); the
SQL below gives the tables tenant-first keys, composite foreign keys, FORCEd row-level
security and their grants (see migrations/rls.py). A SCIM User's id is its member's id and
a SCIM Group's id is its group's id. ``scim_groups (tenant_id, id)`` references its group
(deleting a group deletes its SCIM row). ``scim_users`` has no foreign key to members, on
purpose: members are never deleted (a purge keeps the row), its rows are written only by
``tenants.scim`` in the transaction that reads or creates the member, and the foreign key's
per-row check, planned once per connection while an organisation was still small, cost
~250 µs a row (a sequential scan of members) in an initial sync of 10,000 Users
(``bench/scim.py``).
``userName`` is unique per organisation case-insensitively among live users (RFC 7643
§4.1.1: caseExact false, uniqueness server), which only an expression index can say.
"""

from tortoise.migrations import operations as ops
from orjson import loads
from migrations import base
from tenants.scim.models import Deprovisioning
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from migrations.rls import (
    TenantForeignKey as FK,
    grant_runtime,
    row_level_security,
    tenant_foreign_keys,
    tenant_primary_key,
)

TENANT_TABLES: dict[str, list[FK]] = {
    "scim_settings": [FK("default_unit_id", "units", "SET NULL")],
    # No foreign key to members: see the module docstring.
    "scim_users": [],
    "scim_groups": [FK("id", "groups", "CASCADE")],
}

SQL: list[str] = [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [tenant_foreign_keys(t, keys) for t, keys in TENANT_TABLES.items() if keys]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES]
SQL += [
    "CREATE UNIQUE INDEX scim_users_user_name ON scim_users (tenant_id, lower(user_name)) "
    "WHERE deleted_at IS NULL;",
    # Deleted Users are looked up by userName when a client creates one again (restored).
    "CREATE INDEX scim_users_deleted_user_name ON scim_users (tenant_id, lower(user_name)) "
    "WHERE deleted_at IS NOT NULL;",
]


class Migration(base.Migration):
    dependencies = [("tenants", "0010_privacy_requests_and_mail")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ScimGroup",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "tenants.Organisation",
                        source_field="tenant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("external_id", fields.CharField(null=True, max_length=255)),
            ],
            options={
                "table": "scim_groups",
                "app": "tenants",
                "unique_together": (("tenant_id", "external_id"),),
                "pk_attr": "id",
                "table_description": "The SCIM side of a group; ``id`` is the group's id.",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="ScimSettings",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "tenants.Organisation",
                        source_field="tenant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                (
                    "unit_attribute",
                    fields.CharField(
                        default="department",
                        description="The User attribute whose value names the member's unit: ``department`` (enterprise",
                        max_length=100,
                    ),
                ),
                (
                    "default_unit_id",
                    fields.UUIDField(
                        null=True,
                        description="Where members go whose attribute names no existing unit (None: the root unit).",
                    ),
                ),
                (
                    "deprovisioning",
                    fields.CharEnumField(
                        default=Deprovisioning.SUSPEND,
                        description="SUSPEND: suspend\nDEPARTURE: departure",
                        enum_type=Deprovisioning,
                        max_length=16,
                    ),
                ),
                (
                    "adopt_groups",
                    fields.BooleanField(
                        default=True,
                        description="A SCIM Group created with the name of an existing group not yet provisioned adopts",
                    ),
                ),
            ],
            options={
                "table": "scim_settings",
                "app": "tenants",
                "unique_together": (("tenant_id",),),
                "pk_attr": "id",
                "table_description": "The organisation's provisioning rules (at most one row per organisation).",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="ScimUser",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "tenants.Organisation",
                        source_field="tenant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                (
                    "user_name",
                    fields.CharField(
                        description="``userName`` as the client sent it (unique per organisation, case-insensitively).",
                        max_length=320,
                    ),
                ),
                (
                    "attributes",
                    fields.JSONField(
                        default=dict,
                        description="The attributes the member table has no column for (name parts, displayName,",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "deleted_at",
                    fields.DatetimeField(
                        null=True,
                        description="Set by DELETE: the member is kept (deprovisioned, never destroyed) but the SCIM",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
            ],
            options={
                "table": "scim_users",
                "app": "tenants",
                "pk_attr": "id",
                "table_description": "The SCIM side of a member; ``id`` is the member's id.",
            },
            bases=["TenantModel"],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
