"""A sign-in finishes with the identity provider it started with.

The callback read the organisation's connection as it is now: an admin who switched the
provider (or its client) between a browser's start and its callback sent the first
provider's code, the PKCE verifier and the new client's secret to the new provider's
token endpoint. A login attempt now keeps the issuer and client it was sent to; a callback
whose connection has changed since is refused, before anything is sent anywhere.
Attempts made before this migration have neither, and finish as before (they live a day).
"""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0038_legal_holds_listed")]

    initial = False

    operations = [
        ops.AddField(
            model_name="LoginAttempt",
            name="issuer",
            field=fields.CharField(max_length=500, null=True),
        ),
        ops.AddField(
            model_name="LoginAttempt",
            name="client_id",
            field=fields.CharField(max_length=255, null=True),
        ),
    ]
