"""Searches planned for their text, on every call (issue 16).

``members_matching`` and ``units_matching`` (migrations 0018, 0023) find names and
addresses through ``pg_trgm`` indexes. Which plan is right depends on the text searched:
the trigrams it holds and how many rows share each. Up to PostgreSQL 17 a SQL function's
query was planned on every call, for its text. PostgreSQL 18 keeps SQL functions' plans
like prepared statements, and after five calls it settled on a generic plan made without
the text: a member search in an organisation of a million members then took 16.7 ms
instead of 1.3 ms, and the members page, which searches twice (the page and its count),
45 ms. The functions now ask for a plan made for each text
(``plan_cache_mode = force_custom_plan``); planning costs less than a millisecond.
"""

from tortoise.migrations import operations as ops

from migrations import base

SEARCHES = ("members_matching(text, integer)", "units_matching(text, integer)")


class Migration(base.Migration):
    dependencies = [("tenants", "0031_audit_duplicate_index")]

    initial = False

    operations = [
        ops.RunSQL(
            "".join(f"ALTER FUNCTION {f} SET plan_cache_mode = force_custom_plan;" for f in SEARCHES),
            reverse_sql="".join(f"ALTER FUNCTION {f} RESET plan_cache_mode;" for f in SEARCHES),
        ),
    ]
