"""The console's units page sized by its page (issue 16).

- Members per unit are kept in ``tenant_counters`` under ``unit_members.<unit id>``, by
  statement triggers on members (insert, delete, and an update that moves members between
  units), as 0018_sized_by_page keeps the organisation's totals: the page reads the
  counts of the units it shows, never a count over members. The names sort after
  ``members`` and ``members.<status>``, so a writer takes the counter rows in the order
  the other triggers take them.
- Sign-ins and refused sign-ins per day (the overview's chart) are kept in
  ``tenant_counters`` as ``<action>.<YYYY-MM-DD>.<shard>`` by a row trigger on the audit
  events of those two actions (UTC days; the shard, the backend's pid modulo 8, spreads
  concurrent sign-ins of one organisation over eight rows): the chart reads 224 counters
  by name instead of counting a fortnight of audit events. Counts of the last 31 days
  are backfilled.
- A unit is found by a case-insensitive substring of its name through a ``pg_trgm`` GIN
  index, read by ``units_matching`` (SECURITY DEFINER for the reason
  ``members_matching`` is: LIKE is not leakproof, so under the runtime role's row-level
  security the index could not answer it).
"""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import CURRENT_TENANT, OWNER_ROLE, RUNTIME_ROLE

COUNTERS = """
CREATE FUNCTION count_unit_members() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO tenant_counters AS c (tenant_id, name, n)
      SELECT tenant_id, 'unit_members.' || unit_id, count(*) FROM new_rows
       GROUP BY 1, 2 ORDER BY 2
      ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO tenant_counters AS c (tenant_id, name, n)
      SELECT tenant_id, 'unit_members.' || unit_id, -count(*) FROM old_rows
       GROUP BY 1, 2 ORDER BY 2
      ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
  ELSE
    -- Only the rows whose unit changed (a transition-table trigger cannot name columns).
    INSERT INTO tenant_counters AS c (tenant_id, name, n)
      SELECT tenant_id, name, sum(n) FROM (
        SELECT o.tenant_id, 'unit_members.' || o.unit_id AS name, -1 AS n
          FROM old_rows o JOIN new_rows w ON w.tenant_id = o.tenant_id AND w.id = o.id
         WHERE w.unit_id IS DISTINCT FROM o.unit_id
        UNION ALL
        SELECT w.tenant_id, 'unit_members.' || w.unit_id, 1
          FROM old_rows o JOIN new_rows w ON w.tenant_id = o.tenant_id AND w.id = o.id
         WHERE w.unit_id IS DISTINCT FROM o.unit_id
      ) moved GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 2
      ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER members_units_counted_inserts AFTER INSERT ON members
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_unit_members();
CREATE TRIGGER members_units_counted_deletes AFTER DELETE ON members
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_unit_members();
CREATE TRIGGER members_units_counted_moves AFTER UPDATE ON members
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION count_unit_members();
"""

# As in 0018: the owner runs this under the FORCEd policies, lifted for the backfill inside
# this migration's transaction and put back.
BACKFILL = """
ALTER TABLE members NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_counters NO FORCE ROW LEVEL SECURITY;
INSERT INTO tenant_counters (tenant_id, name, n)
  SELECT tenant_id, 'unit_members.' || unit_id, count(*) FROM members GROUP BY 1, 2;
ALTER TABLE tenant_counters FORCE ROW LEVEL SECURITY;
ALTER TABLE members FORCE ROW LEVEL SECURITY;
"""

SIGN_INS = """
CREATE FUNCTION count_sign_in() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public AS $$
BEGIN
  INSERT INTO tenant_counters AS c (tenant_id, name, n)
    VALUES (NEW.tenant_id,
            NEW.action || '.' || to_char(NEW.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
              || '.' || (pg_backend_pid() % 8),
            1)
    ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + 1;
  RETURN NULL;
END $$;

CREATE TRIGGER audit_sign_ins_counted AFTER INSERT ON audit_events FOR EACH ROW
  WHEN (NEW.action IN ('session.signed_in', 'session.sign_in_refused'))
  EXECUTE FUNCTION count_sign_in();

ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_counters NO FORCE ROW LEVEL SECURITY;
INSERT INTO tenant_counters (tenant_id, name, n)
  SELECT tenant_id,
         action || '.' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '.0',
         count(*)
    FROM audit_events
   WHERE action IN ('session.signed_in', 'session.sign_in_refused')
     AND occurred_at >= now() - interval '31 days'
   GROUP BY 1, 2
  ON CONFLICT (tenant_id, name) DO UPDATE SET n = tenant_counters.n + excluded.n;
ALTER TABLE tenant_counters FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
"""

SEARCH = f"""
CREATE INDEX units_name_trgm ON units USING gin (upper(name::varchar) gin_trgm_ops);
CREATE POLICY owner_search ON units FOR SELECT TO {OWNER_ROLE} USING (true);

-- The ids of the open organisation's units whose name matches p_pattern (a LIKE pattern,
-- matched case-insensitively), at most p_limit of them; see members_matching.
CREATE FUNCTION units_matching(p_pattern text, p_limit int) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    WITH found AS MATERIALIZED (
      SELECT id FROM units
       WHERE tenant_id = {CURRENT_TENANT} AND upper(name::varchar) LIKE upper(p_pattern))
    SELECT id FROM found LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION units_matching(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION units_matching(text, int) TO {RUNTIME_ROLE};
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0022_time_partitions")]

    initial = False

    operations = [
        ops.RunSQL(COUNTERS),
        ops.RunSQL(BACKFILL),
        ops.RunSQL(SIGN_INS),
        ops.RunSQL(SEARCH),
    ]
