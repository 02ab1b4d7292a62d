"""Entra's custom claims provider: per organisation, the Entra tenant and the app
registration whose access tokens may call ``POST /v1/claims/token-issuance``.

The model operation was generated (``tortoise makemigrations -n entra_claims_provider``);
the SQL gives the table its tenant-first key, FORCEd row-level security and grants (see
migrations/rls.py). A callout arrives before anyone knows the organisation, so the
SECURITY DEFINER function ``organisation_id_by_entra_app`` finds it from the token's tenant
and audience (as ``organisation_id_by_domain`` does for a domain), reading as the owner
through an owner-only SELECT policy. An Entra app belongs to one organisation: the pair
(Entra tenant, app id) is unique across organisations, like a slug.
"""

from tortoise.migrations import operations as ops
from migrations import base
from tenants.identity.models import EntraMatch
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

from migrations.rls import (
    OWNER_ROLE,
    RUNTIME_ROLE,
    grant_runtime,
    row_level_security,
    tenant_primary_key,
)

TABLE = "entra_claims_providers"
SQL = [
    tenant_primary_key(TABLE),
    row_level_security(TABLE),
    grant_runtime(TABLE),
    f"CREATE INDEX {TABLE}_app_id_uri ON {TABLE} (entra_tenant_id, app_id_uri) "
    "WHERE app_id_uri IS NOT NULL;",
    f"CREATE POLICY owner_lookup ON {TABLE} FOR SELECT TO {OWNER_ROLE} USING (true);",
    f"""
CREATE FUNCTION organisation_id_by_entra_app(p_entra_tenant text, p_audience text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT tenant_id FROM {TABLE}
        WHERE entra_tenant_id = lower(p_entra_tenant)
          AND (app_id = lower(p_audience) OR app_id_uri = p_audience)
        LIMIT 1 $$;
REVOKE ALL ON FUNCTION organisation_id_by_entra_app(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION organisation_id_by_entra_app(text, text) TO {RUNTIME_ROLE};
""",
]

class Migration(base.Migration):
    dependencies = [('tenants', '0019_member_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EntraClaimsProvider',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('entra_tenant_id', fields.CharField(description="The Entra tenant id (a GUID), as in the token's ``iss`` and ``tid``.", max_length=36)),
                ('app_id', fields.CharField(description="The app registration's application (client) id: the token's ``aud`` (v2 tokens).", max_length=36)),
                ('app_id_uri', fields.CharField(null=True, description='The app ID URI (``api://…``), the ``aud`` of v1 tokens when it is set.', max_length=500)),
                ('match_by', fields.CharEnumField(default=EntraMatch.OBJECT_ID, description='OBJECT_ID: object_id\nUPN: upn\nMAIL: mail', enum_type=EntraMatch, max_length=16)),
            ],
            options={'table': 'entra_claims_providers', 'app': 'tenants', 'unique_together': (('tenant_id',), ('entra_tenant_id', 'app_id')), 'pk_attr': 'id', 'table_description': "The organisation's Entra tenant and the app registration of Tenantry's API, whose"},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
