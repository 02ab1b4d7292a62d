"""Access checks in batches: ``check_data_access_batch`` answers and records many checks of
one organisation in one set-based statement, so the concurrent checks of a process share
one round trip and one commit. Each check is answered exactly as ``check_data_access``
(migration 0008) answers it; the tests hold both to ``tenants.access.rules.answer_check``.
The access log loses its foreign keys (see DROP_LOG_KEYS)."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import RUNTIME_ROLE

SIGNATURE = "check_data_access_batch(uuid, uuid[], text[], uuid[], uuid[], text[], text[])"

SQL = f"""
-- What one grant says about one check: 'allowed' or the reason it does not allow it
-- (as tenants.access.rules.grant_outcome). A plain SQL expression, inlined where used.
CREATE FUNCTION access_grant_outcome(p_status text, p_ends_at timestamptz, p_categories jsonb,
                                     p_all_products boolean, p_product_ids jsonb,
                                     p_category text, p_product uuid)
  RETURNS text LANGUAGE sql STABLE
  AS $$
    SELECT CASE
      WHEN p_status = 'requested' THEN 'pending_approval'
      WHEN p_status = 'denied' THEN 'denied'
      WHEN p_status = 'revoked' THEN 'revoked'
      WHEN p_ends_at IS NULL OR p_ends_at <= now() THEN 'expired'
      WHEN NOT p_categories ? p_category THEN 'category_not_granted'
      WHEN NOT (p_all_products OR p_product_ids ? p_product::text) THEN 'product_not_granted'
      ELSE 'allowed'
    END
  $$;

-- Item i of the arrays is one check; each answer row carries its item. An admin, member or
-- product that does not exist answers unknown_admin / unknown_member / unknown_product and
-- records nothing; every other check is recorded in access_log. SECURITY INVOKER: it runs
-- as the runtime role under row-level security for the organisation it sets
-- (transaction-local) before the one query that does the work. The grants covering a
-- check are found by member, and by the units on the member's path (a unit's grant covers
-- the units below it), each an index range, then ranked as rules.OUTCOME_ORDER.
CREATE FUNCTION check_data_access_batch(p_tenant uuid, p_admins uuid[], p_admin_emails text[],
                                        p_members uuid[], p_products uuid[], p_categories text[],
                                        p_checked_by text[])
  RETURNS TABLE (item int, outcome text, grant_id uuid, log_id bigint, admin_id uuid)
  LANGUAGE plpgsql VOLATILE SET search_path = public
  AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  RETURN QUERY
  WITH asked AS (
    SELECT t.i::int AS item, t.a AS admin_in, lower(t.e) AS email_in, t.m AS member_id,
           t.p AS product_id, t.c AS category, t.b AS checked_by
      FROM unnest(p_admins, p_admin_emails, p_members, p_products, p_categories, p_checked_by)
           WITH ORDINALITY AS t(a, e, m, p, c, b, i)
  ), resolved AS (
    SELECT q.*, adm.id AS admin_id, u.path AS member_path,
           EXISTS (SELECT 1 FROM products pr WHERE pr.id = q.product_id) AS product_known
      FROM asked q
      LEFT JOIN LATERAL (
        SELECT m.id FROM members m WHERE m.id = q.admin_in
        UNION ALL
        SELECT m.id FROM members m WHERE q.admin_in IS NULL AND m.email = q.email_in
        LIMIT 1
      ) adm ON true
      LEFT JOIN members mm ON mm.id = q.member_id
      LEFT JOIN units u ON u.tenant_id = mm.tenant_id AND u.id = mm.unit_id
  ), decided AS (
    SELECT r.item, r.admin_id, r.member_id, r.product_id, r.category, r.checked_by,
           best.id AS grant_id, coalesce(best.outcome, 'no_grant') AS outcome,
           nextval('access_log_id_seq') AS log_id
      FROM resolved r
      LEFT JOIN LATERAL (
        SELECT c.id, c.outcome FROM (
          SELECT g.id, g.ends_at,
                 access_grant_outcome(g.status, g.ends_at, g.categories, g.all_products,
                                      g.product_ids, r.category, r.product_id) AS outcome
            FROM access_grants g
           WHERE g.member_id = r.member_id AND g.admin_id = r.admin_id
          UNION ALL
          SELECT g.id, g.ends_at,
                 access_grant_outcome(g.status, g.ends_at, g.categories, g.all_products,
                                      g.product_ids, r.category, r.product_id)
            FROM access_grants g
           WHERE g.unit_id = ANY (string_to_array(r.member_path, '/')::uuid[])
             AND g.admin_id = r.admin_id
        ) c
        ORDER BY array_position(ARRAY['allowed', 'category_not_granted', 'product_not_granted',
                                      'pending_approval', 'expired', 'revoked', 'denied'],
                                c.outcome),
                 c.ends_at DESC NULLS LAST
        LIMIT 1
      ) best ON true
     WHERE r.admin_id IS NOT NULL AND r.member_path IS NOT NULL AND r.product_known
  ), logged AS (
    INSERT INTO access_log (id, tenant_id, checked_at, admin_id, member_id, product_id, category,
                            allowed, reason, grant_id, checked_by)
    SELECT d.log_id, p_tenant, now(), d.admin_id, d.member_id, d.product_id, d.category,
           d.outcome = 'allowed', NULLIF(d.outcome, 'allowed'), d.grant_id, d.checked_by
      FROM decided d
    RETURNING id
  )
  SELECT r.item,
         CASE
           WHEN r.admin_id IS NULL THEN 'unknown_admin'
           WHEN r.member_path IS NULL THEN 'unknown_member'
           WHEN NOT r.product_known THEN 'unknown_product'
           ELSE d.outcome
         END,
         d.grant_id, l.id, r.admin_id
    FROM resolved r
    LEFT JOIN decided d ON d.item = r.item
    LEFT JOIN logged l ON l.id = d.log_id
   ORDER BY r.item;
END
$$;
REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {RUNTIME_ROLE};

-- One check is a batch of one: the two can never answer differently.
CREATE OR REPLACE FUNCTION check_data_access(p_tenant uuid, p_admin uuid, p_admin_email text,
                                             p_member uuid, p_product uuid, p_category text,
                                             p_checked_by text)
  RETURNS TABLE (outcome text, grant_id uuid, log_id bigint, admin_id uuid)
  LANGUAGE sql VOLATILE SET search_path = public
  AS $$
    SELECT b.outcome, b.grant_id, b.log_id, b.admin_id
      FROM check_data_access_batch(p_tenant, ARRAY[p_admin], ARRAY[p_admin_email],
                                   ARRAY[p_member], ARRAY[p_product], ARRAY[p_category],
                                   ARRAY[p_checked_by]) b
  $$;
"""

# The access log takes a row per product check, many per second, and only the functions
# above write it, under row-level security and from a grant they just read in the same
# organisation. Its foreign keys (to the organisation, to the grant) each ran a referential
# check per row that locked the referenced row in KEY SHARE mode, and every check of an
# organisation locked the same organisation row: concurrent batches queued on it
# (MultiXacts). Like the audit queue (audit_pending), the log carries no foreign key; the
# grant and the organisation are never deleted.
DROP_LOG_KEYS = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT conname FROM pg_constraint
           WHERE conrelid = 'public.access_log'::regclass AND contype = 'f'
  LOOP
    EXECUTE format('ALTER TABLE public.access_log DROP CONSTRAINT %I', r.conname);
  END LOOP;
END $$;"""


class Migration(base.Migration):
    dependencies = [("tenants", "0011_scim_provisioning")]

    initial = False

    operations = [ops.RunSQL(SQL), ops.RunSQL(DROP_LOG_KEYS)]
