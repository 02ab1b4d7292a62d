"""Row-level security, tenant-first keys and grants for the policy tables and the outbox."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import (
    RUNTIME_ROLE,
    TenantForeignKey as FK,
    drop_referable_ids,
    drop_single_column_foreign_keys,
    grant_runtime,
    row_level_security,
    tenant_foreign_keys,
    tenant_primary_key,
)

TENANT_TABLES: dict[str, list[FK]] = {
    "policy_rules": [FK("unit_id", "units", "CASCADE"), FK("group_id", "groups", "CASCADE")],
    "policy_versions": [],
    "member_choices": [FK("member_id", "members", "CASCADE")],
    "declared_settings": [FK("product_id", "products", "CASCADE")],
    "outbox_events": [],
}

SQL: list[str] = [drop_single_column_foreign_keys(t) for t in TENANT_TABLES]
SQL += [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [tenant_foreign_keys(t, keys) for t, keys in TENANT_TABLES.items() if keys]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES if t != "outbox_events"]
SQL += [
    # A rule targets exactly one unit or one group, and each target sets a setting once.
    "ALTER TABLE policy_rules ADD CONSTRAINT policy_rules_one_target CHECK (num_nonnulls(unit_id, group_id) = 1);",
    "CREATE UNIQUE INDEX policy_rules_target_setting ON policy_rules "
    "(tenant_id, coalesce(unit_id, group_id), setting);",
    "CREATE INDEX policy_rules_tenant_setting ON policy_rules (tenant_id, setting);",
    # Events are appended and marked delivered, never rewritten or deleted by the service.
    grant_runtime("outbox_events", "SELECT, INSERT, UPDATE (delivered_at)"),
    f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {RUNTIME_ROLE};",
    drop_referable_ids(["units", "groups", "members", "products"]),
]


class Migration(base.Migration):
    dependencies = [("tenants", "0003_policies")]

    initial = False

    operations = [ops.RunSQL("\n".join(SQL))]
