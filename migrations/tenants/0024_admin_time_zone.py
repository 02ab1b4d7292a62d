"""Each member's time zone (``members.time_zone``, an IANA name such as ``Europe/Paris``):
the console and the account page show times in it, with UTC on hover. The browser reports
it; NULL until it has (times then show in UTC, or in the browser's cookie's zone)."""

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0023_units_sized_by_page")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Member",
            name="time_zone",
            field=fields.CharField(
                null=True,
                max_length=64,
                description="IANA time zone the member's pages show times in; None: UTC.",
            ),
        ),
    ]
