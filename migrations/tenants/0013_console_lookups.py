"""Typeahead look-ups of the console: units and groups found by the start of their name
(case-insensitive), each an index range that costs what it returns, so the "Move under"
picker of a 2,000-unit tree reads ten rows, not two thousand."""

from tortoise import migrations
from tortoise.migrations import operations as ops

SQL = """
CREATE INDEX units_tenant_lower_name ON units (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX groups_tenant_lower_name ON groups (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX members_tenant_lower_email ON members (tenant_id, lower(email) text_pattern_ops);
CREATE INDEX members_tenant_lower_name ON members (tenant_id, lower(name) text_pattern_ops);
"""

REVERSE = """
DROP INDEX IF EXISTS units_tenant_lower_name;
DROP INDEX IF EXISTS groups_tenant_lower_name;
DROP INDEX IF EXISTS members_tenant_lower_email;
DROP INDEX IF EXISTS members_tenant_lower_name;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0012_access_check_batch")]

    initial = False

    operations = [ops.RunSQL(SQL, reverse_sql=REVERSE)]
