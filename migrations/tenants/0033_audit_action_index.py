"""One index fewer to write with every audit event (issue 16).

``audit_events`` carried ``(tenant_id, action, id)``, declared on the model for the
action filter, beside ``(tenant_id, action text_pattern_ops, id)``, made by hand for the
filter by prefix (migration 0015). A ``text_pattern_ops`` index answers equality as well
(``=`` is one of its operators), in the same order, so the second serves both filters
and every event paid for the first for nothing.
"""

from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0032_search_custom_plans")]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name="AuditEvent",
            name=None,
            fields=["tenant_id", "action", "id"],
        ),
    ]
