from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import referable_ids
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

REFERENCED = ["units", "groups", "members", "products"]


class Migration(base.Migration):
    dependencies = [('tenants', '0002_row_level_security')]

    initial = False

    operations = [
        # See migrations/rls.py: lets tortoise create its single-column foreign keys, which
        # 0004 replaces with composite ones before dropping these indexes.
        ops.RunSQL(referable_ids(REFERENCED)),
        ops.CreateModel(
            name='DeclaredSetting',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('product', fields.ForeignKeyField('tenants.Product', source_field='product_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=100)),
                ('definition', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'declared_settings', 'app': 'tenants', 'unique_together': (('tenant_id', 'key'),), 'pk_attr': 'id', 'table_description': 'A setting a product declared for this organisation (same schema as built-ins).'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='MemberChoice',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('member', fields.ForeignKeyField('tenants.Member', source_field='member_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('setting', fields.CharField(max_length=100)),
                ('value', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'member_choices', 'app': 'tenants', 'unique_together': (('tenant_id', 'member_id', 'setting'),), 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='OutboxEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('topic', fields.CharField(max_length=100)),
                ('idempotency_key', fields.CharField(description='Stable per event; receivers de-duplicate on it.', max_length=100)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox_events', 'app': 'tenants', 'unique_together': (('tenant_id', 'idempotency_key'),), 'indexes': [Index(fields=['tenant_id', 'topic', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PolicyRule',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('unit', fields.ForeignKeyField('tenants.Unit', source_field='unit_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('group', fields.ForeignKeyField('tenants.Group', source_field='group_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('setting', fields.CharField(max_length=100)),
                ('value', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('enforced', fields.BooleanField(default=False)),
                ('reason', fields.TextField(default='', description='Shown to members next to the setting.', unique=False)),
                ('effective_from', fields.DatetimeField(null=True, description='The rule applies from this moment; before it, it is scheduled and ignored.', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'policy_rules', 'app': 'tenants', 'pk_attr': 'id', 'table_description': "One setting's value on one unit or one group. Exactly one of unit/group is set."},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PolicyVersion',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('number', fields.IntField()),
                ('summary', fields.TextField(default='', unique=False)),
                ('actor', fields.CharField(max_length=300)),
                ('rules', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'policy_versions', 'app': 'tenants', 'unique_together': (('tenant_id', 'number'),), 'pk_attr': 'id', 'table_description': "The organisation's whole rule set after one change: history, diff and rollback."},
            bases=['TenantModel'],
        ),
        ops.AddField(
            model_name='Organisation',
            name='policy_version',
            field=fields.IntField(default=0, description='Bumped by every change of the rule set (the number in the policy history).'),
        ),
        ops.AddField(
            model_name='Organisation',
            name='structure_version',
            field=fields.IntField(default=0, description='Bumped when units or groups change in ways resolution sees (tree, priorities).'),
        ),
    ]
