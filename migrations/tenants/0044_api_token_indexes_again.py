"""The API tokens list's two indexes, on databases that migrated 0036 before they were
added to it: 0036 was edited after it had been released, and a database already past it
never got them (a page of tokens then sorted all of the organisation's). Nothing on a
database that has them.
"""

from tortoise.migrations import operations as ops

from migrations import base

INDEXES = """
CREATE INDEX IF NOT EXISTS api_tokens_by_created ON api_tokens (tenant_id, created_at, id);
CREATE INDEX IF NOT EXISTS api_tokens_by_name ON api_tokens (tenant_id, name, id);
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0043_kept_id_tokens_indexed")]

    initial = False

    operations = [ops.RunSQL(INDEXES)]
