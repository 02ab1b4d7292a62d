"""Privacy requests (with their timeline, policy and exports) and email messages.

The model operations were generated (``tortoise makemigrations -n privacy_requests_and_mail``);
the SQL below gives the tables tenant-first keys, composite foreign keys, FORCEd row-level
security and their grants (see migrations/rls.py).
"""

from tortoise.migrations import operations as ops
from migrations import base
from migrations.rls import (
    TenantForeignKey as FK,
    drop_referable_ids,
    drop_single_column_foreign_keys,
    grant_runtime,
    referable_ids,
    row_level_security,
    tenant_foreign_keys,
    tenant_primary_key,
)
from orjson import loads
from tenants.mail.models import MailStatus
from tenants.requests.models import ExportStatus, RequestKind, RequestSource, RequestStatus
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

REFERENCED = ["members", "products"]

TENANT_TABLES: dict[str, list[FK]] = {
    "mail_messages": [],
    "mail_template_overrides": [],
    "privacy_requests": [
        FK("member_id", "members"),
        FK("product_id", "products", "SET NULL"),
        FK("assignee_id", "members", "SET NULL"),
    ],
    "privacy_request_events": [FK("request_id", "privacy_requests", "CASCADE")],
    "privacy_request_policies": [],
    "privacy_exports": [FK("request_id", "privacy_requests", "CASCADE")],
    "privacy_export_parts": [
        FK("export_id", "privacy_exports", "CASCADE"),
        FK("product_id", "products", "CASCADE"),
    ],
}

SQL: list[str] = [drop_single_column_foreign_keys(t) for t in TENANT_TABLES]
SQL += [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [tenant_foreign_keys(t, keys) for t, keys in TENANT_TABLES.items() if keys]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES]
SQL += [
    drop_referable_ids(REFERENCED),
    # The legal deadline is one month, extendable by at most two more (GDPR art. 12(3)).
    "ALTER TABLE privacy_requests ADD CONSTRAINT privacy_requests_extension_range "
    "CHECK (extension_months BETWEEN 0 AND 2);",
    "ALTER TABLE privacy_request_policies ADD CONSTRAINT privacy_request_policies_ranges "
    "CHECK (reminder_days BETWEEN 0 AND 27 AND export_link_days BETWEEN 1 AND 90 "
    "AND export_collect_hours BETWEEN 0 AND 720);",
]


class Migration(base.Migration):
    dependencies = [('tenants', '0009_identity_and_signals')]

    initial = False

    operations = [
        ops.RunSQL(referable_ids(REFERENCED)),
        ops.CreateModel(
            name='MailMessage',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('template', fields.CharField(max_length=64)),
                ('key', fields.CharField(description='Unique per organisation: asking twice for the same key is one email.', max_length=200)),
                ('recipients', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('subject', fields.CharField(max_length=500)),
                ('text', fields.TextField(unique=False)),
                ('html', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=MailStatus.QUEUED, description='QUEUED: queued\nSENT: sent\nNOT_SENT: not_sent\nFAILED: failed', enum_type=MailStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'mail_messages', 'app': 'tenants', 'unique_together': (('tenant_id', 'key'),), 'indexes': [Index(fields=['tenant_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One email, rendered in the transaction that caused it (so it says what was true'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='MailTemplateOverride',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('template', fields.CharField(max_length=64)),
                ('subject', fields.CharField(null=True, max_length=300)),
                ('intro', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'mail_template_overrides', 'app': 'tenants', 'unique_together': (('tenant_id', 'template'),), 'pk_attr': 'id', 'table_description': "An organisation's own subject or opening paragraph for one template."},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PrivacyRequest',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('member', fields.ForeignKeyField('tenants.Member', source_field='member_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='INQUIRY: inquiry\nACCESS: access\nPORTABILITY: portability\nRECTIFICATION: rectification\nERASURE: erasure\nRESTRICTION: restriction\nOBJECTION: objection\nWITHDRAW_CONSENT: withdraw_consent', enum_type=RequestKind, max_length=20)),
                ('message', fields.TextField(unique=False)),
                ('source', fields.CharEnumField(description='ACCOUNT: account\nPRODUCT: product\nAPI: api', enum_type=RequestSource, max_length=16)),
                ('product', fields.ForeignKeyField('tenants.Product', source_field='product_id', null=True, description='The product that forwarded the request, and its own reference for it.', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('product_reference', fields.CharField(null=True, max_length=200)),
                ('status', fields.CharEnumField(default=RequestStatus.RECEIVED, description='RECEIVED: received\nIN_PROGRESS: in_progress\nANSWERED: answered\nREJECTED: rejected\nWITHDRAWN: withdrawn', enum_type=RequestStatus, max_length=16)),
                ('assignee', fields.ForeignKeyField('tenants.Member', source_field='assignee_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('due_on', fields.DateField(description='The last day (UTC) to answer: received date plus one month plus any extension.')),
                ('extension_months', fields.SmallIntField(default=0, description='Months added to the one-month deadline (at most two in total).')),
                ('extension_reason', fields.TextField(null=True, description='Why the deadline was extended; the member is told.', unique=False)),
                ('answer', fields.TextField(null=True, description='The answer the member reads (also the reason for a rejection).', unique=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_by', fields.CharField(null=True, max_length=300)),
                ('erasure_evidence', fields.JSONField(null=True, description='What an erasure removed, where and by whom (also in the audit trail).', encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'privacy_requests', 'app': 'tenants', 'unique_together': (('tenant_id', 'product_id', 'product_reference'),), 'indexes': [Index(fields=['tenant_id', 'status', 'due_on']), Index(fields=['tenant_id', 'member_id', 'created_at']), Index(fields=['tenant_id', 'assignee_id']), Index(fields=['tenant_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PrivacyExport',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('request', fields.ForeignKeyField('tenants.PrivacyRequest', source_field='request_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=ExportStatus.COLLECTING, description='COLLECTING: collecting\nREADY: ready\nEXPIRED: expired', enum_type=ExportStatus, max_length=16)),
                ('expected_product_ids', fields.JSONField(default=list, description='Products asked for their part (ids as text).', encoder=JSON_DUMPS, decoder=loads)),
                ('collect_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('bundle', fields.BinaryField(null=True, description='The ZIP; None until built and after it expired.')),
                ('size', fields.BigIntField(default=0)),
                ('sha256', fields.CharField(null=True, max_length=64)),
                ('files', fields.JSONField(default=list, description='``[{"name": ..., "size": ...}]`` of the files in the ZIP, for the console.', encoder=JSON_DUMPS, decoder=loads)),
                ('ready_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'privacy_exports', 'app': 'tenants', 'unique_together': (('tenant_id', 'request_id'),), 'pk_attr': 'id', 'table_description': 'The export of one access or portability request (one per request).'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PrivacyExportPart',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('export', fields.ForeignKeyField('tenants.PrivacyExport', source_field='export_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('product', fields.ForeignKeyField('tenants.Product', source_field='product_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('data', fields.BinaryField(description='UTF-8 JSON as uploaded (validated as JSON, stored as given).')),
                ('size', fields.BigIntField(default=0)),
                ('uploaded_by', fields.CharField(max_length=300)),
            ],
            options={'table': 'privacy_export_parts', 'app': 'tenants', 'unique_together': (('tenant_id', 'export_id', 'product_id'),), 'pk_attr': 'id', 'table_description': "A product's part of an export: the JSON it uploaded about the member."},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PrivacyRequestEvent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('request', fields.ForeignKeyField('tenants.PrivacyRequest', source_field='request_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('internal', fields.BooleanField(default=False)),
                ('body', fields.TextField(default='', unique=False)),
                ('data', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('actor', fields.CharField(max_length=300)),
                ('actor_display', fields.CharField(max_length=300)),
            ],
            options={'table': 'privacy_request_events', 'app': 'tenants', 'indexes': [Index(fields=['tenant_id', 'request_id', 'created_at'])], 'pk_attr': 'id', 'table_description': "One entry of a request's timeline. ``internal`` entries (notes, assignment) are for"},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PrivacyRequestPolicy',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('reminder_days', fields.SmallIntField(default=7, description='Reminder to the assignee (or the privacy officers) this many days before the due day.')),
                ('export_link_days', fields.SmallIntField(default=7, description="How long the member's download link for an export stays valid.")),
                ('export_collect_hours', fields.SmallIntField(default=72, description='How long products have to upload their part of an export before it is built anyway.')),
            ],
            options={'table': 'privacy_request_policies', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': "The organisation's settings for privacy requests; absent means the defaults in"},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
