"""A group's ``updated_at`` moves when its members change.

SCIM's ``meta.lastModified`` of a Group (and ``updated_at`` in ``/v1/groups``) is "the
most recent time the details of this resource were updated" (RFC 7643 §3.1), and its
members are among those details; it moved only when the group's own row was written, so a
client syncing by ``filter=meta.lastModified gt …`` missed every membership change. One
statement trigger per direction, for every path that adds or removes members (SCIM, the
console and API, sign-in's groups claim, imports, erasure): the groups a statement touched
are stamped once, as the writer, under row-level security for its own organisation.
"""

from tortoise.migrations import operations as ops

from migrations import base

TOUCH = """
CREATE FUNCTION touch_groups_of_memberships() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE groups g SET updated_at = now()
      FROM (SELECT DISTINCT tenant_id, group_id FROM new_rows) c
     WHERE g.tenant_id = c.tenant_id AND g.id = c.group_id AND g.updated_at < now();
  ELSE
    UPDATE groups g SET updated_at = now()
      FROM (SELECT DISTINCT tenant_id, group_id FROM old_rows) c
     WHERE g.tenant_id = c.tenant_id AND g.id = c.group_id AND g.updated_at < now();
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER group_memberships_added_touch_group AFTER INSERT ON group_memberships
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION touch_groups_of_memberships();
CREATE TRIGGER group_memberships_removed_touch_group AFTER DELETE ON group_memberships
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION touch_groups_of_memberships();
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0041_sign_out_at_provider")]

    initial = False

    operations = [ops.RunSQL(TOUCH)]
