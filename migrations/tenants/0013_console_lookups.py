"""Look-ups of the console. Typeahead: units, groups and members found by the start of
their name or email (case-insensitive), each an index range that costs what it returns, so
the "Move under" picker of a 2,000-unit tree reads ten rows, not two thousand. Audit
investigation: events by actor, and by action prefix (``member.``), newest first."""

from tortoise import migrations
from tortoise.migrations import operations as ops

SQL = """
CREATE INDEX units_tenant_lower_name ON units (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX groups_tenant_lower_name ON groups (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX members_tenant_lower_email ON members (tenant_id, lower(email) text_pattern_ops);
CREATE INDEX members_tenant_lower_name ON members (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX audit_events_tenant_actor_id ON audit_events (tenant_id, actor, id);
CREATE INDEX audit_events_tenant_action_prefix ON audit_events (tenant_id, action text_pattern_ops, id);
"""

REVERSE = """
DROP INDEX IF EXISTS units_tenant_lower_name;
DROP INDEX IF EXISTS groups_tenant_lower_name;
DROP INDEX IF EXISTS members_tenant_lower_email;
DROP INDEX IF EXISTS members_tenant_lower_name;
DROP INDEX IF EXISTS audit_events_tenant_actor_id;
DROP INDEX IF EXISTS audit_events_tenant_action_prefix;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0012_access_check_batch")]

    initial = False

    operations = [ops.RunSQL(SQL, reverse_sql=REVERSE)]
