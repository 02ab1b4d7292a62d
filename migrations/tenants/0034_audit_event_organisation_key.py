"""No foreign key from an audit event to its organisation (issue 16).

Checking ``audit_events.tenant_id → organisations`` locked the organisation's row
(``FOR KEY SHARE``) for every event. Every write of an organisation records an event, so
all its concurrent writers took a share lock on that one row: PostgreSQL then records the
lockers in a new MultiXact for nearly every event (0.9 per event, measured with
``pg_walinspect``), and writes a row lock, in the WAL and on the organisation's page. In
PostgreSQL alone (``pgbench``, eight clients), dropping the key made the audited member
update 8 % faster.

The key guarded nothing the grants do not: the runtime role may not delete an
organisation (it has SELECT, INSERT and UPDATE on ``organisations``), and no
organisation is deleted by the service. An event still names an organisation by
``tenant_id``, under row-level security as before, like ``audit_pending`` and
``audit_chain``, which never had such a key. The link from the chain to its event keeps
its key: it is checked by the sealer, once per event in a batch, off the write path, and
it stops even the owner from deleting a chained event.
"""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0033_audit_action_index")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="AuditEvent",
            name="tenant",
            field=fields.ForeignKeyField(
                "tenants.Organisation", related_name=False, on_delete=fields.RESTRICT,
                db_index=False, db_constraint=False,
            ),
        ),
        ops.RunSQL(
            "ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_id_fkey;",
            reverse_sql=(
                "ALTER TABLE audit_events ADD CONSTRAINT audit_events_tenant_id_fkey "
                "FOREIGN KEY (tenant_id) REFERENCES organisations (id) ON DELETE RESTRICT;"
            ),
        ),
    ]
