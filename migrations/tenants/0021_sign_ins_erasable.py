"""The sign-in log loses a member's rows when the member is erased (the personal-data map
deletes them, as it deletes their sessions): the runtime role may now DELETE from
``sign_ins``, within its organisation as row-level security allows. It still may not
UPDATE a row: the log is appended to, read, and emptied of a person or by retention,
never rewritten."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import RUNTIME_ROLE


class Migration(base.Migration):
    dependencies = [("tenants", "0020_entra_claims_provider")]

    initial = False

    operations = [
        ops.RunSQL(
            f"GRANT DELETE ON sign_ins TO {RUNTIME_ROLE};",
            reverse_sql=f"REVOKE DELETE ON sign_ins FROM {RUNTIME_ROLE};",
        )
    ]
