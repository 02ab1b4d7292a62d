"""The identity-change safety net (issue 18, part 4): an SSO connection keeps a snapshot of
its configuration before the last change (``previous_config``, the same fields as the
connection including the encrypted secret) and when it was taken (``previous_saved_at``),
so an admin can restore it in one step for 24 hours. The columns live on the tenant table
``sso_connections`` (row-level security FORCEd since 0002; the runtime role already may
UPDATE it), so no new table and no new grant."""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0025_hold_explanations")]

    initial = False

    operations = [
        ops.AddField(
            model_name="SsoConnection",
            name="previous_config",
            field=fields.JSONField(
                null=True, description="The configuration before the last change (restorable)."
            ),
        ),
        ops.AddField(
            model_name="SsoConnection",
            name="previous_saved_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
