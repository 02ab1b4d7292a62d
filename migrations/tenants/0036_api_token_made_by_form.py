"""A console form makes at most one API token.

The console's "Create an API token" form answers its POST with the token's text, shown
once. Reloading that page sent the form again and made a second token under the same name
(a newcomer did, and had two active "Nightly export" tokens). Each form now carries a
random id (``made_by_form``), kept with the token it made; a unique index per organisation
refuses a second token from the same form, also when both sends race.

The console lists an organisation's tokens a page at a time, newest first or by name
(``tokens.service.list_tokens``): each order has its index, so a page reads its rows.
"""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0035_names_unique_ignoring_case")]

    initial = False

    operations = [
        ops.AddField(
            model_name="ApiToken",
            name="made_by_form",
            field=fields.UUIDField(null=True),
        ),
        ops.RunSQL(
            "CREATE UNIQUE INDEX api_tokens_made_by_form ON api_tokens (tenant_id, made_by_form)"
            " WHERE made_by_form IS NOT NULL;",
            reverse_sql="DROP INDEX IF EXISTS api_tokens_made_by_form;",
        ),
        ops.RunSQL(
            "CREATE INDEX api_tokens_by_created ON api_tokens (tenant_id, created_at, id);"
            " CREATE INDEX api_tokens_by_name ON api_tokens (tenant_id, name, id);",
            reverse_sql="DROP INDEX IF EXISTS api_tokens_by_name;"
            " DROP INDEX IF EXISTS api_tokens_by_created;",
        ),
    ]
