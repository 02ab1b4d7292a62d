from uuid import uuid4

from orjson import loads
from tortoise import fields
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from migrations import base
from tenants.members.lifecycle import MemberStatus
from tenants.organisations.models import OrganisationKind, OrganisationStatus
from tenants.products.models import ProductAccountStatus
from tenants.sessions.models import AuthMethod
from tenants.sso.models import default_scopes


class Migration(base.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Organisation",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("slug", fields.CharField(unique=True, max_length=63)),
                ("name", fields.CharField(max_length=200)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="EMPLOYER: employer\nSCHOOL: school",
                        enum_type=OrganisationKind,
                        max_length=16,
                    ),
                ),
                (
                    "domains",
                    fields.JSONField(
                        default=list,
                        description="Verified email domains, lower case; used for home-realm discovery at sign-in.",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=OrganisationStatus.ACTIVE,
                        description="ACTIVE: active\nSUSPENDED: suspended",
                        enum_type=OrganisationStatus,
                        max_length=16,
                    ),
                ),
                (
                    "local_sign_in",
                    fields.BooleanField(
                        default=False,
                        description="Members may sign in with a local password (off by default; SSO is the normal way).",
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "organisations", "app": "tenants", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ApiToken",
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
                ("name", fields.CharField(max_length=200)),
                ("secret_hash", fields.CharField(max_length=64)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_by", fields.CharField(max_length=255)),
            ],
            options={"table": "api_tokens", "app": "tenants", "pk_attr": "id"},
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
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
                ("seq", fields.BigIntField()),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actor", fields.CharField(max_length=300)),
                ("actor_display", fields.CharField(max_length=300)),
                ("action", fields.CharField(max_length=100)),
                ("target_type", fields.CharField(max_length=50)),
                ("target_id", fields.CharField(max_length=100)),
                ("before", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ("after", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ("request_id", fields.CharField(null=True, max_length=100)),
                ("client_addr", fields.CharField(null=True, max_length=100)),
                ("prev_hash", fields.CharField(max_length=64)),
                ("hash", fields.CharField(max_length=64)),
            ],
            options={
                "table": "audit_events",
                "app": "tenants",
                "unique_together": (("tenant_id", "seq"),),
                "indexes": [
                    Index(fields=["tenant_id", "action", "seq"]),
                    Index(fields=["tenant_id", "target_type", "target_id", "seq"]),
                    Index(fields=["tenant_id", "occurred_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One write. The runtime role may INSERT and SELECT, never UPDATE or DELETE.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditHead",
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
                ("seq", fields.BigIntField(default=0)),
                ("hash", fields.CharField(max_length=64)),
            ],
            options={
                "table": "audit_heads",
                "app": "tenants",
                "unique_together": (("tenant_id",),),
                "pk_attr": "id",
                "table_description": "The newest event of one organisation's chain; locked to append, one row per org.",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="Group",
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
                ("name", fields.CharField(max_length=200)),
                ("description", fields.TextField(default="", unique=False)),
                (
                    "priority",
                    fields.IntField(
                        default=0,
                        description="Higher wins when two groups' rules set the same setting.",
                    ),
                ),
            ],
            options={
                "table": "groups",
                "app": "tenants",
                "unique_together": (("tenant_id", "name"),),
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="LoginAttempt",
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
                ("state", fields.CharField(max_length=100)),
                ("nonce", fields.CharField(max_length=100)),
                ("code_verifier", fields.CharField(max_length=200)),
                (
                    "browser_binding",
                    fields.CharField(
                        description="SHA-256 of a cookie set on the browser that started the sign-in (login CSRF guard).",
                        max_length=64,
                    ),
                ),
                ("return_to", fields.CharField(default="", max_length=500)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "login_attempts",
                "app": "tenants",
                "unique_together": (("tenant_id", "state"),),
                "pk_attr": "id",
                "table_description": "One authorization request sent to the IdP, awaiting its callback (single use).",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="Product",
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
                    "key",
                    fields.CharField(
                        description="Stable short name products use to identify themselves (``mail``, ``drive``).",
                        max_length=63,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("description", fields.TextField(default="", unique=False)),
            ],
            options={
                "table": "products",
                "app": "tenants",
                "unique_together": (("tenant_id", "key"),),
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="ProductClient",
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
                    "product",
                    fields.ForeignKeyField(
                        "tenants.Product",
                        source_field="product_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="clients",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                (
                    "client_id",
                    fields.CharField(
                        description="``pc_<organisation id>_<random>``: carries the organisation like API tokens do.",
                        max_length=100,
                    ),
                ),
                ("secret_hash", fields.CharField(max_length=64)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "product_clients",
                "app": "tenants",
                "unique_together": (("tenant_id", "client_id"),),
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="SigningKey",
            fields=[
                (
                    "kid",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("private_jwk_enc", fields.TextField(unique=False)),
                ("public_jwk", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("retired_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "signing_keys",
                "app": "tenants",
                "pk_attr": "kid",
                "table_description": "A key the service signs access tokens with. Not tenant data: one set per service.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Unit",
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
                    "parent",
                    fields.ForeignKeyField(
                        "tenants.Unit",
                        source_field="parent_id",
                        null=True,
                        db_constraint=False,
                        to_field="id",
                        related_name="children",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("path", fields.TextField(unique=False)),
                ("depth", fields.IntField()),
            ],
            options={
                "table": "units",
                "app": "tenants",
                "unique_together": (("tenant_id", "parent_id", "name"),),
                "indexes": [Index(fields=["tenant_id", "path"])],
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="Member",
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
                    "email",
                    fields.CharField(
                        description="Stored lower-cased; unique per organisation.", max_length=320
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                (
                    "unit",
                    fields.ForeignKeyField(
                        "tenants.Unit",
                        source_field="unit_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="members",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "manager",
                    fields.ForeignKeyField(
                        "tenants.Member",
                        source_field="manager_id",
                        null=True,
                        db_constraint=False,
                        to_field="id",
                        related_name="reports",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "idp_subject",
                    fields.CharField(
                        null=True,
                        description="The ``sub`` claim from the organisation's identity provider.",
                        max_length=255,
                    ),
                ),
                (
                    "external_id",
                    fields.CharField(
                        null=True,
                        description="SCIM ``externalId`` set by the provisioning client.",
                        max_length=255,
                    ),
                ),
                ("roles", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "status",
                    fields.CharEnumField(
                        default=MemberStatus.INVITED,
                        description="INVITED: invited\nACTIVE: active\nDEPARTING: departing\nSUSPENDED: suspended\nDEPARTED: departed\nPURGED: purged",
                        enum_type=MemberStatus,
                        max_length=16,
                    ),
                ),
                (
                    "status_changed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "members",
                "app": "tenants",
                "unique_together": (
                    ("tenant_id", "email"),
                    ("tenant_id", "idp_subject"),
                    ("tenant_id", "external_id"),
                ),
                "indexes": [
                    Index(fields=["tenant_id", "unit_id"]),
                    Index(fields=["tenant_id", "status"]),
                    Index(fields=["tenant_id", "name"]),
                    Index(fields=["tenant_id", "manager_id"]),
                    Index(fields=["tenant_id", "created_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="GroupMembership",
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
                    "group",
                    fields.ForeignKeyField(
                        "tenants.Group",
                        source_field="group_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="memberships",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "tenants.Member",
                        source_field="member_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="group_memberships",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
            ],
            options={
                "table": "group_memberships",
                "app": "tenants",
                "unique_together": (("tenant_id", "group_id", "member_id"),),
                "indexes": [Index(fields=["tenant_id", "member_id"])],
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="LocalCredential",
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
                    "member",
                    fields.ForeignKeyField(
                        "tenants.Member",
                        source_field="member_id",
                        db_constraint=False,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("password_hash", fields.CharField(max_length=300)),
                ("break_glass", fields.BooleanField(default=False)),
                ("failed_attempts", fields.IntField(default=0)),
                (
                    "locked_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "local_credentials",
                "app": "tenants",
                "unique_together": (("tenant_id", "member_id"),),
                "pk_attr": "id",
                "table_description": "A password for local sign-in (argon2id), or the break-glass admin's.",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="ProductAccount",
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
                    "member",
                    fields.ForeignKeyField(
                        "tenants.Member",
                        source_field="member_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="product_accounts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "product",
                    fields.ForeignKeyField(
                        "tenants.Product",
                        source_field="product_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="accounts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=ProductAccountStatus.ASSIGNED,
                        description="ASSIGNED: assigned\nSUSPENDED: suspended\nREMOVED: removed",
                        enum_type=ProductAccountStatus,
                        max_length=16,
                    ),
                ),
            ],
            options={
                "table": "product_accounts",
                "app": "tenants",
                "unique_together": (("tenant_id", "member_id", "product_id"),),
                "indexes": [Index(fields=["tenant_id", "product_id"])],
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="Session",
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
                    "member",
                    fields.ForeignKeyField(
                        "tenants.Member",
                        source_field="member_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "secret_hash",
                    fields.CharField(
                        description="SHA-256 of the secret in the browser's cookie.", max_length=64
                    ),
                ),
                (
                    "auth_method",
                    fields.CharEnumField(
                        description="OIDC: oidc\nPASSWORD: password\nBREAK_GLASS: break_glass",
                        enum_type=AuthMethod,
                        max_length=16,
                    ),
                ),
                ("last_seen_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_reason", fields.CharField(null=True, max_length=200)),
                (
                    "idp_sid",
                    fields.CharField(
                        null=True,
                        description="The IdP's session id (``sid``) and subject, for back-channel logout.",
                        max_length=255,
                    ),
                ),
                ("idp_subject", fields.CharField(null=True, max_length=255)),
                ("client_addr", fields.CharField(null=True, max_length=100)),
                ("user_agent", fields.CharField(null=True, max_length=300)),
            ],
            options={
                "table": "sessions",
                "app": "tenants",
                "indexes": [
                    Index(fields=["tenant_id", "member_id"]),
                    Index(fields=["tenant_id", "idp_sid"]),
                    Index(fields=["tenant_id", "idp_subject"]),
                ],
                "pk_attr": "id",
            },
            bases=["TenantModel"],
        ),
        ops.CreateModel(
            name="SsoConnection",
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
                ("issuer", fields.CharField(max_length=500)),
                ("client_id", fields.CharField(max_length=255)),
                (
                    "client_secret_enc",
                    fields.TextField(
                        default="",
                        description="AES-GCM ciphertext of the client secret (see tenants/secrets.py); never returned.",
                        unique=False,
                    ),
                ),
                (
                    "scopes",
                    fields.JSONField(default=default_scopes, encoder=JSON_DUMPS, decoder=loads),
                ),
                ("email_claim", fields.CharField(default="email", max_length=100)),
                ("name_claim", fields.CharField(default="name", max_length=100)),
                ("groups_claim", fields.CharField(null=True, max_length=100)),
                ("unit_claim", fields.CharField(null=True, max_length=100)),
                (
                    "allowed_domains",
                    fields.JSONField(
                        default=list,
                        description="Email domains allowed to sign in; empty means the organisation's verified domains.",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("jit_provisioning", fields.BooleanField(default=False)),
                (
                    "default_unit",
                    fields.ForeignKeyField(
                        "tenants.Unit",
                        source_field="default_unit_id",
                        null=True,
                        db_constraint=False,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("enabled", fields.BooleanField(default=True)),
                (
                    "last_tested_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "last_test_result",
                    fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
                ),
            ],
            options={
                "table": "sso_connections",
                "app": "tenants",
                "unique_together": (("tenant_id",),),
                "pk_attr": "id",
                "table_description": "The organisation's OpenID Connect identity provider (one per organisation).",
            },
            bases=["TenantModel"],
        ),
    ]
