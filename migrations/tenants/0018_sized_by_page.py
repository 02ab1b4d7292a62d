"""Every page sized by its page, not by the organisation (issue 16).

- Sessions are found by the hash of their secret on every console and account request:
  an index on it, and one on ``expires_at`` for the worker's sweep of expired sessions
  (``delete_expired_sessions``, SECURITY DEFINER: it crosses organisations and returns a
  count only).
- The overview's counts come from ``tenant_counters``, kept by statement triggers on
  members, units, groups and products (a bulk insert adds one row change per statement,
  not per member); its break-glass list reads a partial index of those sign-ins.
- Member search is a case-insensitive substring match on email and name, answered by
  ``pg_trgm`` GIN indexes through ``members_matching`` (see there why it is SECURITY
  DEFINER). ``pg_trgm`` is a trusted extension: the owner creates it (it needs CREATE on
  the database, granted in ``app.database.prepare_database``).
- ``units.path`` compares bytewise (COLLATE "C"), so a subtree is the range
  ``path >= p AND path < p || '0'`` ('0' follows '/'), an index range with parameters
  too: the generic plan asyncpg switches to after five calls uses it as the custom one
  does (``LIKE $1`` cannot, its prefix is unknown when planned).
"""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import (
    CURRENT_TENANT,
    OWNER_ROLE,
    RUNTIME_ROLE,
    grant_runtime,
    row_level_security,
)

COUNTED = ("members", "units", "groups", "products")

COUNTERS = f"""
CREATE TABLE tenant_counters (
  tenant_id uuid NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
  name text NOT NULL,
  n bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, name)
);
{row_level_security("tenant_counters")}
{grant_runtime("tenant_counters", "SELECT, INSERT, UPDATE")}

-- Add the row changes of one statement to the counters: the table's total under its own
-- name, members also per status ('members.<status>'). Runs as the writer, under
-- row-level security for its own organisation.
CREATE FUNCTION count_rows() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO tenant_counters AS c (tenant_id, name, n)
      SELECT tenant_id, TG_TABLE_NAME, count(*) FROM new_rows GROUP BY tenant_id
      ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
    IF TG_TABLE_NAME = 'members' THEN
      INSERT INTO tenant_counters AS c (tenant_id, name, n)
        SELECT tenant_id, 'members.' || status, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 2
        ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO tenant_counters AS c (tenant_id, name, n)
      SELECT tenant_id, TG_TABLE_NAME, -count(*) FROM old_rows GROUP BY tenant_id
      ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
    IF TG_TABLE_NAME = 'members' THEN
      INSERT INTO tenant_counters AS c (tenant_id, name, n)
        SELECT tenant_id, 'members.' || status, -count(*) FROM old_rows GROUP BY 1, 2 ORDER BY 2
        ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
    END IF;
  END IF;
  RETURN NULL;
END $$;

-- A member's status change moves one count between two statuses (rows taken in name
-- order, as every writer takes them, so two writers cannot deadlock on them).
CREATE FUNCTION count_member_status() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public AS $$
BEGIN
  INSERT INTO tenant_counters AS c (tenant_id, name, n)
    SELECT v.t, v.name, v.n FROM (VALUES (NEW.tenant_id, 'members.' || NEW.status, 1),
                                         (OLD.tenant_id, 'members.' || OLD.status, -1))
                                 AS v(t, name, n) ORDER BY v.name
    ON CONFLICT (tenant_id, name) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;

CREATE TRIGGER members_status_counted AFTER UPDATE OF status ON members
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION count_member_status();
"""


def _counted(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_inserts_counted AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
CREATE TRIGGER {table}_deletes_counted AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_counters NO FORCE ROW LEVEL SECURITY;
INSERT INTO tenant_counters (tenant_id, name, n)
  SELECT tenant_id, '{table}', count(*) FROM {table} GROUP BY 1;
ALTER TABLE tenant_counters FORCE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"""


# The owner runs this under the FORCEd policies (no organisation set: no rows to read and
# none to write), so the policies of the source and of tenant_counters are lifted for the
# backfill, inside this migration's transaction, and put back.
BACKFILL_STATUS = """
ALTER TABLE members NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_counters NO FORCE ROW LEVEL SECURITY;
INSERT INTO tenant_counters (tenant_id, name, n)
  SELECT tenant_id, 'members.' || status, count(*) FROM members GROUP BY 1, 2;
ALTER TABLE tenant_counters FORCE ROW LEVEL SECURITY;
ALTER TABLE members FORCE ROW LEVEL SECURITY;
"""

SESSIONS = f"""
CREATE UNIQUE INDEX sessions_tenant_secret_hash ON sessions (tenant_id, secret_hash);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Expired sessions of every organisation, oldest first, at most p_limit of them; returns
-- how many went. A session past its absolute lifetime can never be used again.
CREATE FUNCTION delete_expired_sessions(p_limit int) RETURNS bigint
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  WITH old AS MATERIALIZED (
    SELECT tenant_id, id FROM sessions WHERE expires_at < now()
     ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED
  ), gone AS (
    DELETE FROM sessions s USING old WHERE s.tenant_id = old.tenant_id AND s.id = old.id
    RETURNING 1)
  SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION delete_expired_sessions(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION delete_expired_sessions(int) TO {RUNTIME_ROLE};
"""

# SECURITY DEFINER runs as the owner, who is subject to the FORCEd policy on sessions; the
# policy lets the owner's sweep through (and nobody else without an organisation set).
SWEEP_POLICY = """
CREATE POLICY expired_sweep ON sessions FOR ALL TO tenantry_owner
  USING (expires_at < now());
"""

BREAK_GLASS = """
CREATE INDEX audit_events_break_glass ON audit_events (tenant_id, id)
  WHERE action = 'session.signed_in' AND (after ->> 'break_glass') = 'true';
"""

SEARCH = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX members_email_trgm ON members USING gin (upper(email::varchar) gin_trgm_ops);
CREATE INDEX members_name_trgm ON members USING gin (upper(name::varchar) gin_trgm_ops);
CREATE POLICY owner_search ON members FOR SELECT TO {OWNER_ROLE} USING (true);

-- The ids of the open organisation's members whose email or name matches p_pattern (a LIKE
-- pattern, matched case-insensitively), at most p_limit of them. SECURITY DEFINER because
-- LIKE is not leakproof: under the runtime role's row-level security PostgreSQL must
-- check the tenant before it may evaluate LIKE, so the trigram index cannot answer it.
-- The owner reads through a policy of its own, and the organisation is the caller's
-- (app.tenant_id, set by its transaction): nobody learns more than their own rows. The
-- matches are planned without the limit (MATERIALIZED), or a generic plan, guessing
-- the limit cuts the scan short, would choose to scan the organisation.
CREATE FUNCTION members_matching(p_pattern text, p_limit int) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    WITH found AS MATERIALIZED (
      SELECT id FROM members
       WHERE tenant_id = {CURRENT_TENANT}
         AND (upper(email::varchar) LIKE upper(p_pattern)
              OR upper(name::varchar) LIKE upper(p_pattern)))
    SELECT id FROM found LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION members_matching(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION members_matching(text, int) TO {RUNTIME_ROLE};
"""

SUBTREE = """
ALTER TABLE units ALTER COLUMN path TYPE text COLLATE "C";
DROP INDEX IF EXISTS units_tenant_path_pattern;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0017_domains_and_sign_ins")]

    initial = False

    operations = [
        ops.RunSQL(COUNTERS),
        *[ops.RunSQL(_counted(t)) for t in COUNTED],
        ops.RunSQL(BACKFILL_STATUS),
        ops.RunSQL(SESSIONS),
        ops.RunSQL(SWEEP_POLICY),
        ops.RunSQL(BREAK_GLASS),
        ops.RunSQL(SEARCH),
        ops.RunSQL(SUBTREE),
    ]
