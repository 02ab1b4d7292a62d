"""Legal holds in the console: the organisation's held items as a list, and a member's
items a page at a time, each read from an index of its own.

Holds were placed through the API only (``PUT /v1/content/{id}/legal-hold``); the console
showed one held item at a time, reached from the overview. The new list of holds reads
the held items alone (partial indexes: an organisation holds few of its items), newest
change first or by title; a member's items are listed newest first, as the API lists
them, from ``(tenant_id, member_id, created_at, id)`` rather than by sorting every item
the member holds.
"""

from tortoise.migrations import operations as ops

from migrations import base

INDEXES = """
CREATE INDEX content_items_held_changed ON content_items (tenant_id, updated_at, id)
  WHERE legal_hold;
CREATE INDEX content_items_held_title ON content_items (tenant_id, title, id)
  WHERE legal_hold;
CREATE INDEX content_items_member_created ON content_items (tenant_id, member_id, created_at, id);
"""

DROP = """
DROP INDEX content_items_held_changed;
DROP INDEX content_items_held_title;
DROP INDEX content_items_member_created;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0037_search_ignores_accents")]

    initial = False

    operations = [ops.RunSQL(INDEXES, reverse_sql=DROP)]
