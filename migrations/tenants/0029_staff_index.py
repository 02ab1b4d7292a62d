"""Admins found without reading every member (issue 16).

Looking up an organisation's owners, admins or privacy officers (who to email about a
privacy request or a domain, who may handle a request or review access, whether another
owner is left) read every member of the organisation: ``roles ?| …`` cannot use an
index, so at a million members each lookup scanned a million rows for a handful.

``members.staff`` is true for a member with a role beyond ``member``, computed by
PostgreSQL from ``roles`` (a stored generated column: no writer can get it wrong), and
the partial index ``members_staff`` holds those members only. A lookup adds ``staff`` to
its role test (``tenants.members.roles.STAFF``) and reads that index alone, in custom
and generic plans. A plain boolean column, not the expression itself in the index
predicate: under the runtime role's row-level security the planner does not count a
non-leakproof expression's selectivity, took the partial index for half the members
and chose to scan them all; a column has statistics and needs no function to test.

Adding the column rewrites ``members`` under an exclusive lock: about a second per
100,000 members.
"""

from tortoise.migrations import operations as ops

from migrations import base

STAFF = """
ALTER TABLE members ADD COLUMN staff boolean NOT NULL
  GENERATED ALWAYS AS (roles - 'member' <> '[]'::jsonb) STORED;
COMMENT ON COLUMN members.staff IS 'Holds a role beyond member (generated from roles).';
CREATE INDEX members_staff ON members (tenant_id, status) WHERE staff;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0028_access_reviews")]

    initial = False

    operations = [
        ops.RunSQL(
            STAFF,
            reverse_sql="DROP INDEX IF EXISTS members_staff; ALTER TABLE members DROP COLUMN staff",
        ),
    ]
