from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

from migrations import base
from migrations.rls import grant_runtime, row_level_security, tenant_primary_key

TABLE = "seen_logout_tokens"

class Migration(base.Migration):
    dependencies = [('tenants', '0005_audit_chain')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SeenLogoutToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('jti', fields.CharField(max_length=255)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'seen_logout_tokens', 'app': 'tenants', 'unique_together': (('tenant_id', 'jti'),), 'pk_attr': 'id', 'table_description': 'A back-channel logout token already acted on, kept until it expires so a captured'},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join([
            tenant_primary_key(TABLE),
            row_level_security(TABLE),
            grant_runtime(TABLE, "SELECT, INSERT, DELETE"),
            f"CREATE INDEX {TABLE}_expiry ON {TABLE} (tenant_id, expires_at);",
        ])),
    ]
