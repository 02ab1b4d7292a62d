"""An organisation's time zone: the days its admins name (a member's last day, the day a
policy takes effect, a review's due day) are its days (``tenants.organisations.days``).
Organisations already there keep UTC, which their days were until now; an access review
keeps the zone it was made in.
"""

from tortoise import fields

from migrations import base


class Migration(base.Migration):
    dependencies = [("tenants", "0046_rate_limit_wait")]

    initial = False

    operations = [
        base.AddColumnWithDefault(
            model_name="Organisation",
            name="time_zone",
            field=fields.CharField(max_length=64, default="UTC"),
            table="organisations",
            column_sql="varchar(64) NOT NULL DEFAULT 'UTC'",
        ),
        # A campaign keeps the zone it was made in: its jobs are queued for its instants.
        base.AddColumnWithDefault(
            model_name="AccessReview",
            name="time_zone",
            field=fields.CharField(max_length=64, default="UTC"),
            table="access_reviews",
            column_sql="varchar(64) NOT NULL DEFAULT 'UTC'",
        ),
    ]
