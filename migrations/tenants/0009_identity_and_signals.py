from tortoise.migrations import operations as ops
from migrations import base
from tenants.identity.models import BackendKind
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from migrations.rls import grant_runtime, row_level_security, tenant_primary_key

TENANT_TABLES = ["identity_backends", "signal_transmitters", "seen_security_events"]

SQL: list[str] = [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES]

class Migration(base.Migration):
    dependencies = [('tenants', '0008_access_grants')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdentityBackendConfig',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('kind', fields.CharEnumField(default=BackendKind.LOCAL, description='LOCAL: local\nKEYCLOAK: keycloak', enum_type=BackendKind, max_length=16)),
                ('server_url', fields.CharField(null=True, description="Keycloak's base URL (``https://kc.example``, without ``/admin``).", max_length=500)),
                ('realm', fields.CharField(null=True, max_length=255)),
                ('client_id', fields.CharField(null=True, description='A confidential client of ``realm`` with the realm-management roles the adapter needs.', max_length=255)),
                ('client_secret_enc', fields.TextField(default='', description='AES-GCM ciphertext of the client secret (tenants/secrets.py); never returned.', unique=False)),
                ('last_synced_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, description='The last failure talking to the backend (cleared by the next success).', unique=False)),
            ],
            options={'table': 'identity_backends', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': 'One per organisation; no row means ``local``.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SeenSecurityEvent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('jti', fields.CharField(max_length=255)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'seen_security_events', 'app': 'tenants', 'unique_together': (('tenant_id', 'jti'),), 'pk_attr': 'id', 'table_description': 'A SET already accepted, kept while its ``iat`` keeps it acceptable, so a captured'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SignalTransmitter',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('issuer', fields.CharField(max_length=500)),
                ('jwks_uri', fields.CharField(max_length=2000)),
                ('audience', fields.CharField(max_length=500)),
                ('enabled', fields.BooleanField(default=True)),
                ('last_event_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'signal_transmitters', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': 'The transmitter whose Security Event Tokens this organisation accepts (one per'},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
