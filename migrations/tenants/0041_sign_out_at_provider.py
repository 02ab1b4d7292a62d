"""Signing out of Tenantry can sign the person out at the identity provider too.

On a shared computer (a school's library, a ward's terminal) signing out of Tenantry alone
left the provider's session open: the next person to press "Continue with …'s sign-in"
came in as the one before. ``sso_connections.sign_out_at_provider`` turns on OpenID
Connect RP-Initiated Logout 1.0 for the organisation; ``sessions.idp_id_token_enc`` keeps
the ID token a session began with (encrypted, only while that is on, cleared when the
session ends), which some providers (Okta) require as the ``id_token_hint``.
"""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0040_sign_in_detail")]

    initial = False

    operations = [
        # With its default in the database: a plain AddField failed on every database
        # holding an SSO connection (a NOT NULL column without a default).
        base.AddColumnWithDefault(
            model_name="SsoConnection",
            name="sign_out_at_provider",
            field=fields.BooleanField(default=False),
            table="sso_connections",
            column_sql="boolean NOT NULL DEFAULT false",
        ),
        ops.AddField(
            model_name="Session",
            name="idp_id_token_enc",
            field=fields.TextField(null=True),
        ),
    ]
