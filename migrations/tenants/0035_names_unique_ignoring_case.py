"""Unit and group names unique whatever their capitals.

A group's name was unique in its organisation, and a unit's among its siblings (same
parent), only as typed: "Sales" and "sales" could both exist. Now the unique indexes
compare ``lower(name)``, as the console's look-ups by the start of a name do (0015):

- ``groups_tenant_lower_name_key`` on ``(tenant_id, lower(name) text_pattern_ops)``
  replaces 0015's ``groups_tenant_lower_name`` (the same columns, so it still answers
  those look-ups, equality included);
- ``units_tenant_parent_lower_name_key`` on ``(tenant_id, parent_id, lower(name))``: units
  under different parents may still share a name. 0015's ``units_tenant_lower_name``
  stays: its look-ups cross the tree.

The case-sensitive unique constraints of 0001 go; a plain index on the same columns takes
each one's place, as the pages that list siblings or groups in name order read it.

Names that already collide whatever their capitals are renamed, not refused: in each
collision the oldest row (``created_at``, then id) keeps its name and each later one gets
`` (2)``, `` (3)``… appended, the first number that makes a name free in its scope; a name
cut to leave room for the suffix within the 200 characters of the column. Each rename is
recorded as the service records it (``group.updated`` or ``unit.renamed``, before and
after), by the system actor ``migration 0035_names_unique_ignoring_case``, and queued for
sealing into the organisation's chain. An identity backend that mirrors groups learns the
new names at its next reconcile. Going back drops the new indexes; the renames stay (they
break no rule of before).

The owner runs this under the FORCEd policies (no organisation set: no rows to read and
none to write), so, as in 0018 and 0023, the policies of the four tables written are lifted
inside this migration's transaction and put back.
"""

from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from migrations import base

ACTOR = "migration 0035_names_unique_ignoring_case"
LIFTED = ("groups", "units", "audit_events", "audit_pending")


def _dedupe(
    table: str,
    scope: tuple[str, ...],
    action: str,
    target: str,
    snapshot: str,
    read: tuple[str, ...] = (),
) -> str:
    """Rename the later rows of ``table`` whose names collide in any capitals within
    ``scope`` (the columns beside ``tenant_id`` that bound a name's uniqueness), each to
    the first free ``name (n)``, and record each rename as ``action`` on ``target`` with
    ``snapshot`` before and after: ``jsonb_build_object`` arguments, ``@name`` standing
    for the name, other values read from ``later`` (the row; ``read`` names the columns
    it needs beyond the scope)."""
    partition = ", ".join(["tenant_id", *scope])
    columns = ", ".join(["id", "tenant_id", "name", *scope, *read])
    same_scope = "".join(f" AND u.{c} IS NOT DISTINCT FROM later.{c}" for c in scope)
    before = snapshot.replace("@name", "later.name")
    after = snapshot.replace("@name", "renamed")
    return f"""
DO $$
DECLARE later record; n int; renamed text;
BEGIN
  FOR later IN
    SELECT {columns} FROM (
      SELECT {columns},
             row_number() OVER (PARTITION BY {partition}, lower(name) ORDER BY created_at, id)
               AS nth
        FROM {table}) ranked
     WHERE nth > 1
     ORDER BY {partition}, lower(name), nth
  LOOP
    n := 1;
    LOOP
      n := n + 1;
      renamed := rtrim(left(later.name, 200 - length(' (' || n || ')'))) || ' (' || n || ')';
      EXIT WHEN NOT EXISTS (SELECT 1 FROM {table} u
                             WHERE u.tenant_id = later.tenant_id{same_scope}
                               AND lower(u.name) = lower(renamed));
    END LOOP;
    UPDATE {table} SET name = renamed, updated_at = now()
     WHERE tenant_id = later.tenant_id AND id = later.id;
    WITH recorded AS (
      INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action,
                                target_type, target_id, before, after)
      VALUES (later.tenant_id, now(), 'system:{ACTOR}', '{ACTOR}', '{action}', '{target}',
              later.id::text, jsonb_build_object({before}), jsonb_build_object({after}))
      RETURNING tenant_id, id)
    INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded;
  END LOOP;
END $$;
"""


GROUPS = _dedupe("groups", (), "group.updated", "group", "'name', @name")
# As rename_unit records it: the unit's snapshot (name, parent_id, path) before and after.
UNITS = _dedupe(
    "units",
    ("parent_id",),
    "unit.renamed",
    "unit",
    "'name', @name, 'parent_id', later.parent_id, 'path', later.path",
    read=("path",),
)

DEDUPE = (
    "".join(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY;\n" for t in LIFTED)
    + GROUPS
    + UNITS
    + "".join(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n" for t in reversed(LIFTED))
)

INDEXES = """
DROP INDEX groups_tenant_lower_name;
CREATE UNIQUE INDEX groups_tenant_lower_name_key
  ON groups (tenant_id, lower(name) text_pattern_ops);
CREATE UNIQUE INDEX units_tenant_parent_lower_name_key
  ON units (tenant_id, parent_id, lower(name));
"""

INDEXES_REVERSE = """
DROP INDEX IF EXISTS units_tenant_parent_lower_name_key;
DROP INDEX IF EXISTS groups_tenant_lower_name_key;
CREATE INDEX groups_tenant_lower_name ON groups (tenant_id, lower(name) text_pattern_ops);
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0034_audit_event_organisation_key")]

    initial = False

    operations = [
        ops.RunSQL(DEDUPE, reverse_sql=ops.RunSQL.noop),
        ops.RunSQL(INDEXES, reverse_sql=INDEXES_REVERSE),
        ops.RemoveConstraint(model_name="Group", name=None, fields=["tenant_id", "name"]),
        ops.AddIndex(model_name="Group", index=Index(fields=["tenant_id", "name"])),
        ops.RemoveConstraint(
            model_name="Unit", name=None, fields=["tenant_id", "parent_id", "name"]
        ),
        ops.AddIndex(model_name="Unit", index=Index(fields=["tenant_id", "parent_id", "name"])),
    ]
