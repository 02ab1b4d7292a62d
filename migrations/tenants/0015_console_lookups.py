"""Look-ups of the console. Typeahead: units, groups and members found by the start of
their name or email (case-insensitive), each an index range that costs what it returns, so
the "Move under" picker of a 2,000-unit tree reads ten rows, not two thousand. Audit
investigation: events by actor, and by action prefix (``member.``), newest first.

Overview: live break-glass sessions and data accesses by time, each an index range; and
``member_status_days``, the organisation's member count per status per day (written when
the counts are read, see tenants.overview), which the 90-day chart reads instead of
reconstructing history from the audit log."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import grant_runtime, row_level_security

SQL = """
CREATE INDEX units_tenant_lower_name ON units (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX groups_tenant_lower_name ON groups (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX members_tenant_lower_email ON members (tenant_id, lower(email) text_pattern_ops);
CREATE INDEX members_tenant_lower_name ON members (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX audit_events_tenant_actor_id ON audit_events (tenant_id, actor, id);
CREATE INDEX audit_events_tenant_action_prefix ON audit_events (tenant_id, action text_pattern_ops, id);
CREATE INDEX sessions_tenant_break_glass ON sessions (tenant_id, expires_at)
  WHERE auth_method = 'break_glass' AND revoked_at IS NULL;
CREATE INDEX access_log_tenant_checked_at ON access_log (tenant_id, checked_at);
CREATE TABLE member_status_days (
  tenant_id uuid NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
  day date NOT NULL,
  status varchar(16) NOT NULL,
  members integer NOT NULL,
  PRIMARY KEY (tenant_id, day, status)
);
""" + row_level_security("member_status_days") + grant_runtime("member_status_days")

REVERSE = """
DROP INDEX IF EXISTS units_tenant_lower_name;
DROP INDEX IF EXISTS groups_tenant_lower_name;
DROP INDEX IF EXISTS members_tenant_lower_email;
DROP INDEX IF EXISTS members_tenant_lower_name;
DROP INDEX IF EXISTS audit_events_tenant_actor_id;
DROP INDEX IF EXISTS audit_events_tenant_action_prefix;
DROP INDEX IF EXISTS sessions_tenant_break_glass;
DROP INDEX IF EXISTS access_log_tenant_checked_at;
DROP TABLE IF EXISTS member_status_days;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0014_shared_rate_limits")]

    initial = False

    operations = [ops.RunSQL(SQL, reverse_sql=REVERSE)]
