"""Hold-aware explanations (issue 18, part 3): a legal hold carries what the member is told
and when the hold is reviewed.

- ``content_items.hold_member_text``: the member-facing text the admin records when placing
  the hold (free text, shown to the member on their account page and in the answer to
  their privacy request). The hold's confidential reason stays in the audit trail only.
- ``content_items.hold_review_on``: the date the hold is next reviewed. Holds placed before
  this migration have neither; the console's overview lists them as "holds without a
  review date" so an admin adds one.

A partial index holds exactly the held items without a review date, so the overview's
reminder counts and lists them at the cost of what it shows, not of every item.

The runtime role's UPDATE on ``content_items`` is table-wide, so it covers the new columns.
"""

from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0024_admin_time_zone")]

    initial = False

    operations = [
        ops.RunSQL(
            "ALTER TABLE content_items ADD COLUMN hold_member_text text NULL, "
            "ADD COLUMN hold_review_on date NULL;",
            reverse_sql="ALTER TABLE content_items DROP COLUMN hold_member_text, "
            "DROP COLUMN hold_review_on;",
        ),
        ops.RunSQL(
            "CREATE INDEX content_items_hold_unreviewed ON content_items "
            "(tenant_id, updated_at, id) WHERE legal_hold AND hold_review_on IS NULL;",
            reverse_sql="DROP INDEX content_items_hold_unreviewed;",
        ),
    ]
