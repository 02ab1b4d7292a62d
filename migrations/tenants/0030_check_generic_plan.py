"""The access check's statement planned once per connection, not once per call (issue 16).

``check_data_access_batch`` (migration 0012) runs one query over the arrays it is given.
PL/pgSQL keeps that query's plan, but the plan cache compares a generic plan with the
custom plans of its first calls: a custom plan sees the arrays and counts their items,
the generic plan guesses ten, so the generic one always looked dearer and every call was
planned again. Measured on PostgreSQL 18 with 10,000 members: 1,090 µs of server CPU for
a batch of one check, 1,265 µs for six, most of it planning; with the generic plan 310 µs
and 482 µs, the same indexes used. The function now says so itself
(``plan_cache_mode = force_generic_plan``): the plan does not depend on the values, only
the number of checks, and the query reads each check through the same index probes
whatever that number.
"""

from tortoise.migrations import operations as ops

from migrations import base

SIGNATURE = "check_data_access_batch(uuid, uuid[], text[], uuid[], uuid[], text[], text[])"


class Migration(base.Migration):
    dependencies = [("tenants", "0029_staff_index")]

    initial = False

    operations = [
        ops.RunSQL(
            f"ALTER FUNCTION {SIGNATURE} SET plan_cache_mode = force_generic_plan",
            reverse_sql=f"ALTER FUNCTION {SIGNATURE} RESET plan_cache_mode",
        ),
    ]
