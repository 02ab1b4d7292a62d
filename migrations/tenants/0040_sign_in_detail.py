"""The sign-in log keeps what went wrong in the protocol, in words.

A refusal at the identity provider's step (an issuer or key that does not match, a token
endpoint that refused the client, a userinfo answer that failed) was logged by its code
only: the specific cause ("issued by 'X', not 'Y'", "HTTP 400, invalid_request") went to
the person's browser alone, and an admin had to ask for a screenshot. ``detail`` holds
that sentence (Tenantry's own words, the provider's values quoted and cut short).
"""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0039_sign_in_keeps_its_provider")]

    initial = False

    operations = [
        ops.AddField(
            model_name="SignIn",
            name="detail",
            field=fields.CharField(max_length=300, null=True),
        ),
    ]
