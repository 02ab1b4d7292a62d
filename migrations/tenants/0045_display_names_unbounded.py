"""Who did something, as people read it (``name <address>``), and the sealed forms of it,
are text without a length limit. The columns held 300 characters (an address 100), but a
member's name may be 200 and their address 254, and a sealed value (encrypted for
crypto-shredding, ``tenants.privacy.shredding``) is about twice its text: a member with a
140-letter name, or 44 Japanese characters, could not sign in (the event of their sign-in
did not fit, a 500), and the sealed address of a client on IPv6 did not fit either.

From varchar to text PostgreSQL changes the catalogue only: no table or index is
rewritten.
"""

from tortoise import fields

from migrations import base

#: (model, table, column, nullable)
COLUMNS = [
    ("AuditEvent", "audit_events", "actor_display", False),
    ("AuditEvent", "audit_events", "client_addr", True),
    ("PrivacyRequestEvent", "privacy_request_events", "actor_display", False),
    ("AccessGrant", "access_grants", "requested_by_display", False),
    ("AccessReview", "access_reviews", "created_by_display", False),
    ("AccessReviewItem", "access_review_items", "decided_by_display", True),
]


class Migration(base.Migration):
    dependencies = [("tenants", "0044_api_token_indexes_again")]

    initial = False

    operations = [
        base.AlterColumnType(
            model_name=model,
            name=column,
            field=fields.TextField(null=nullable),
            table=table,
            sql_type="text",
        )
        for model, table, column, nullable in COLUMNS
    ]
