"""Service-wide figures for the operators' metrics (``/metrics``): how many jobs wait, run
or are dead per kind, how old the oldest due job is, and how far the audit sealer is
behind. A SECURITY DEFINER function answers them as aggregates only (no ids, no
organisation), reading as the owner through SELECT policies of its own, so the runtime
role still reads nothing across organisations. Each figure reads an index: queued and
running jobs through the partial indexes of 0007, dead jobs through a new one; the
pending audit events through ``audit_pending``'s key."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import OWNER_ROLE, RUNTIME_ROLE

SQL = f"""
CREATE INDEX jobs_dead ON jobs (kind) WHERE status = 'dead';
CREATE POLICY owner_metrics ON audit_events FOR SELECT TO {OWNER_ROLE} USING (true);

CREATE FUNCTION service_metrics()
  RETURNS TABLE (figure text, kind text, status text, value double precision)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$
    SELECT 'jobs', j.kind, j.status, count(*)::float8 FROM jobs j
     WHERE j.status IN ('queued', 'running') GROUP BY j.kind, j.status
    UNION ALL
    SELECT 'jobs', j.kind, 'dead', count(*)::float8 FROM jobs j
     WHERE j.status = 'dead' GROUP BY j.kind
    UNION ALL
    SELECT 'oldest_due_job_seconds', '', '',
           coalesce(extract(epoch FROM now() - min(j.run_at)), 0)::float8
      FROM jobs j WHERE j.status = 'queued' AND j.run_at <= now()
    UNION ALL
    SELECT 'audit_pending', '', '', count(*)::float8 FROM audit_pending
    UNION ALL
    SELECT 'audit_sealing_lag_seconds', '', '',
           coalesce(extract(epoch FROM now() - min(e.occurred_at)), 0)::float8
      FROM (SELECT p.tenant_id, p.event_id FROM audit_pending p
             ORDER BY p.event_id LIMIT 1) oldest
      JOIN audit_events e ON e.tenant_id = oldest.tenant_id AND e.id = oldest.event_id
  $$;
REVOKE ALL ON FUNCTION service_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION service_metrics() TO {RUNTIME_ROLE};
"""

REVERSE = """
DROP FUNCTION service_metrics();
DROP POLICY owner_metrics ON audit_events;
DROP INDEX jobs_dead;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0012_access_check_batch")]

    initial = False

    operations = [ops.RunSQL(SQL, reverse_sql=REVERSE)]
