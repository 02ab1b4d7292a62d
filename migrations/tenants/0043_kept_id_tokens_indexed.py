"""The sessions that keep an ID token (for signing out at the provider) are found by an
index of their own: switching that off forgets every kept token in one statement, which
read all of the organisation's sessions (at a million members, every session they hold).
"""

from tortoise.migrations import operations as ops

from migrations import base

INDEX = """
CREATE INDEX sessions_kept_id_tokens ON sessions (tenant_id)
 WHERE idp_id_token_enc IS NOT NULL;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0042_group_touched_by_its_members")]

    initial = False

    operations = [ops.RunSQL(INDEX)]
