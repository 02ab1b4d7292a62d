"""Access reviews (issue 18, part 6): recertification campaigns and their items.

The model operations were generated (``tortoise makemigrations -n access_reviews``; the
unrelated drift it also wrote was dropped); the SQL gives both tables their tenant-first
key, FORCEd row-level security and grants (see migrations/rls.py), and the reviewer queue
its index: pending items whose ``reviewer_ids`` (a JSON array of member ids) holds the
reviewer, found with ``@>`` through a GIN index.
"""

from tortoise.migrations import operations as ops
from orjson import loads
from migrations import base
from tenants.reviews.rules import CampaignStatus, DueDefault, ItemKind, ItemState, RecurrenceUnit, ReviewerRule
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

from migrations.rls import grant_runtime, row_level_security, tenant_primary_key

SQL = [
    tenant_primary_key("access_reviews"),
    row_level_security("access_reviews"),
    grant_runtime("access_reviews"),
    tenant_primary_key("access_review_items"),
    row_level_security("access_review_items"),
    grant_runtime("access_review_items"),
    "CREATE INDEX access_review_items_queue ON access_review_items "
    "USING gin (reviewer_ids jsonb_path_ops) WHERE state = 'pending';",
]


class Migration(base.Migration):
    dependencies = [('tenants', '0027_policy_schedule')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccessReview',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('name', fields.CharField(max_length=200)),
                ('scopes', fields.JSONField(default=list, description='``ScopeKind`` values: what the campaign reviews.', encoder=JSON_DUMPS, decoder=loads)),
                ('reviewer_rule', fields.CharEnumField(description='MANAGER: manager\nUNIT_ADMINS: unit_admins\nNAMED: named', enum_type=ReviewerRule, max_length=16)),
                ('named_reviewer_ids', fields.JSONField(default=list, description="Member ids (text) of the named reviewers (the rule's people, and the fallback).", encoder=JSON_DUMPS, decoder=loads)),
                ('starts_on', fields.DateField()),
                ('due_on', fields.DateField()),
                ('recurrence_every', fields.IntField(null=True)),
                ('recurrence_unit', fields.CharEnumField(null=True, description='DAYS: days\nMONTHS: months', enum_type=RecurrenceUnit, max_length=8)),
                ('default_on_due', fields.CharEnumField(description='KEEP: keep\nREVOKE: revoke', enum_type=DueDefault, max_length=8)),
                ('status', fields.CharEnumField(default=CampaignStatus.SCHEDULED, description='SCHEDULED: scheduled\nOPEN: open\nCOMPLETED: completed', enum_type=CampaignStatus, max_length=16)),
                ('owner_id', fields.UUIDField(null=True, description='The member who owns the campaign (its creator, or the person behind their token);')),
                ('created_by', fields.CharField(max_length=300)),
                ('created_by_display', fields.CharField(max_length=300)),
                ('previous_id', fields.UUIDField(null=True, description='The campaign this one recurs from (unique: a recurrence happens once).')),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('items_total', fields.IntField(default=0)),
                ('items_decided', fields.IntField(default=0)),
            ],
            options={'table': 'access_reviews', 'app': 'tenants', 'unique_together': (('tenant_id', 'previous_id'),), 'indexes': [Index(fields=['tenant_id', 'created_at']), Index(fields=['tenant_id', 'starts_on']), Index(fields=['tenant_id', 'due_on']), Index(fields=['tenant_id', 'status', 'due_on']), Index(fields=['tenant_id', 'status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One campaign.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='AccessReviewItem',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('review_id', fields.UUIDField()),
                ('kind', fields.CharEnumField(description='ADMIN_ROLE: admin_role\nACCESS_GRANT: access_grant\nPRODUCT_CLIENT: product_client', enum_type=ItemKind, max_length=16)),
                ('member_id', fields.UUIDField(null=True, description='The person whose access it is: the role holder, the admin holding a grant.')),
                ('role', fields.CharField(null=True, max_length=32)),
                ('grant_id', fields.UUIDField(null=True)),
                ('client_id', fields.UUIDField(null=True)),
                ('subject_label', fields.CharField(description='What the reviewer sees, as it was at the snapshot ("Ada Admin: admin").', max_length=500)),
                ('reviewer_ids', fields.JSONField(default=list, description='Member ids (text) who may decide it.', encoder=JSON_DUMPS, decoder=loads)),
                ('state', fields.CharEnumField(default=ItemState.PENDING, description='PENDING: pending\nAPPROVED: approved\nREVOKED: revoked\nKEPT_ON_DUE: kept_on_due\nREVOKED_ON_DUE: revoked_on_due', enum_type=ItemState, max_length=16)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('decided_by', fields.UUIDField(null=True)),
                ('decided_by_display', fields.CharField(null=True, max_length=300)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome_note', fields.CharField(null=True, description='What applying a revocation found ("already ended") when there was nothing left to end.', max_length=300)),
            ],
            options={'table': 'access_review_items', 'app': 'tenants', 'indexes': [Index(fields=['tenant_id', 'review_id', 'created_at']), Index(fields=['tenant_id', 'review_id', 'state', 'created_at']), Index(fields=['tenant_id', 'member_id'])], 'pk_attr': 'id', 'table_description': 'One access under review and its decision.'},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
