"""One index fewer to write with every audit event (issue 16).

``audit_events`` carried two identical indexes on ``(tenant_id, actor, id)``: one created
by hand for the console's actor filter (migration 0015), one declared on the model for
erasure when it was added later (migration 0019). Every event paid both. The model's
stays; it serves both readers.
"""

from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0030_check_generic_plan")]

    initial = False

    operations = [
        ops.RunSQL(
            "DROP INDEX IF EXISTS audit_events_tenant_actor_id",
            reverse_sql="CREATE INDEX audit_events_tenant_actor_id "
            "ON audit_events (tenant_id, actor, id)",
        ),
    ]
