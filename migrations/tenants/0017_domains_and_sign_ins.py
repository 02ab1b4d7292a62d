"""Verified domains and the sign-in log.

``domains`` replaces ``organisations.domains`` (a JSON list anyone could fill): a domain
is an organisation's only once proven in DNS (``tenants.domains``). Existing domains are
carried over as *pending*, each with a fresh token, because nothing ever proved them:
after upgrading, the owners publish the record shown in the console (or ``GET
/v1/domains``) and verify; until then email discovery does not route to them.
Among proven domains (verified or flagged) a name is unique across organisations: a
partial unique index on ``name`` alone, the one key here not led by ``tenant_id``, since
its whole point is to span tenants. ``domain_owner`` and ``organisation_id_by_domain``
(SECURITY DEFINER, like the slug lookup of 0002) read it for the runtime role.

``sign_ins`` is append-only (the runtime role may SELECT and INSERT) and high-volume: its
indexes all end in ``at DESC, id DESC`` behind ``tenant_id`` and the filter's column, so
the newest-first page of any filter is one index range.

The model operations were generated (``tortoise makemigrations -n domains_and_sign_ins``).
"""

from tortoise.migrations import operations as ops
from migrations import base
from tenants.domains.rules import DomainProof, DomainStatus
from tenants.signins.rules import SignInMethod, SignInOutcome
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

OWNED = "('verified', 'flagged')"
SQL: list[str] = [
    tenant_primary_key("domains"),
    tenant_primary_key("sign_ins"),
    # The old list, carried over unproven, before row-level security is on (the owner
    # reads every organisation through its directory policy).
    """
INSERT INTO domains (id, tenant_id, name, token, status, created_at, updated_at)
SELECT gen_random_uuid(), o.id, d.name, replace(gen_random_uuid()::text, '-', ''),
       'pending', now(), now()
  FROM organisations o, LATERAL jsonb_array_elements_text(o.domains) AS d(name)
ON CONFLICT DO NOTHING;""",
    row_level_security("domains"),
    row_level_security("sign_ins"),
    grant_runtime("domains"),
    grant_runtime("sign_ins", "SELECT, INSERT"),
    f"CREATE POLICY owner_directory ON domains FOR SELECT TO {OWNER_ROLE} USING (true);",
    f"CREATE UNIQUE INDEX domains_owned_name ON domains (name) WHERE status IN {OWNED};",
    "CREATE INDEX domains_tenant_next_check ON domains (tenant_id, next_check_at);",
    f"""
CREATE FUNCTION domain_owner(p_domain text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT tenant_id FROM domains WHERE name = lower(p_domain) AND status IN {OWNED} $$;
CREATE OR REPLACE FUNCTION organisation_id_by_domain(p_domain text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT d.tenant_id FROM domains d JOIN organisations o ON o.id = d.tenant_id
         WHERE d.name = lower(p_domain) AND d.status IN {OWNED} AND o.status = 'active' $$;
REVOKE ALL ON FUNCTION domain_owner(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION domain_owner(text) TO {RUNTIME_ROLE};
""",
    "CREATE INDEX sign_ins_tenant_at ON sign_ins (tenant_id, at DESC, id DESC);",
    *(
        f"CREATE INDEX sign_ins_tenant_{column}_at ON sign_ins "
        f"(tenant_id, {column}, at DESC, id DESC){where};"
        for column, where in (
            ("member_id", " WHERE member_id IS NOT NULL"),
            ("email", " WHERE email IS NOT NULL"),
            ("outcome", ""),
            ("method", ""),
            ("reason", " WHERE reason IS NOT NULL"),
        )
    ),
]

class Migration(base.Migration):
    dependencies = [('tenants', '0016_worker_heartbeats_and_member_event_order')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Domain',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('name', fields.CharField(max_length=253)),
                ('token', fields.CharField(description='The secret part of the TXT record to publish (``tenantry-verification=<token>``).', max_length=64)),
                ('status', fields.CharEnumField(default=DomainStatus.PENDING, description='PENDING: pending\nVERIFIED: verified\nFLAGGED: flagged', enum_type=DomainStatus, max_length=16)),
                ('proof', fields.CharEnumField(null=True, description='DNS: dns\nSEED: seed', enum_type=DomainProof, max_length=16)),
                ('verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('flagged_at', fields.DatetimeField(null=True, description='Set while flagged: since when the record has been missing.', auto_now=False, auto_now_add=False)),
                ('next_check_at', fields.DatetimeField(null=True, description='When the periodic re-check is due (a re-check job due at another time is stale).', auto_now=False, auto_now_add=False)),
                ('last_check_result', fields.CharField(null=True, description='What the last check found, in words (shown in the console).', max_length=300)),
            ],
            options={'table': 'domains', 'app': 'tenants', 'unique_together': (('tenant_id', 'name'),), 'pk_attr': 'id', 'table_description': 'One email domain of the organisation, pending until proven.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SignIn',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('method', fields.CharEnumField(description='SSO: sso\nPASSWORD: password\nBREAK_GLASS: break_glass\nPRODUCT_CLIENT: product_client', enum_type=SignInMethod, max_length=16)),
                ('outcome', fields.CharEnumField(description='SUCCEEDED: succeeded\nREFUSED: refused', enum_type=SignInOutcome, max_length=16)),
                ('reason', fields.CharField(null=True, description='``tenants.signins.rules.Reason``; None when the sign-in succeeded.', max_length=40)),
                ('email', fields.CharField(null=True, description='Who, as far as known: the email typed or claimed (lower case), the IdP subject,', max_length=320)),
                ('idp_subject', fields.CharField(null=True, max_length=255)),
                ('member_id', fields.UUIDField(null=True)),
                ('idp', fields.CharField(null=True, description="The identity provider's issuer (SSO), or the product client's id (product_client).", max_length=500)),
                ('client_addr', fields.CharField(null=True, max_length=100)),
                ('user_agent', fields.CharField(null=True, max_length=300)),
            ],
            options={'table': 'sign_ins', 'app': 'tenants', 'pk_attr': 'id', 'table_description': 'One sign-in attempt, as it ended. Never updated; the runtime role may only insert'},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join(SQL)),
        ops.RemoveField(model_name='Organisation', name='domains'),
    ]
