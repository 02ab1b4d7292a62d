"""``rate_limit_wait``: how long a rate limit's key must still wait, counting nothing.

Failed passwords are counted per address typed and client (``tenants.sessions.passwords``)
instead of per credential: five wrong passwords for an address from anywhere locked its
credential, so anyone could keep any member (the break-glass owner too) locked out, and a
locked account answered unlike an unknown address (which addresses exist, told by reason
and time). A sign-in asks whether its client may still try that address without counting
the attempt; a failure is counted by ``rate_limit_hit``. ``local_credentials``'
``failed_attempts`` and ``locked_until`` are no longer written; they stay while the
previous version may run beside this one.
"""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import RUNTIME_ROLE

SQL = f"""
CREATE FUNCTION rate_limit_wait(p_bucket text, p_window_seconds int, p_limit int)
  RETURNS int LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$
    SELECT CASE WHEN count(*) >= p_limit
                THEN greatest(1, ceil(extract(epoch FROM
                       min(h.at) + make_interval(secs => p_window_seconds) - now())))::int
                ELSE 0 END
      FROM (SELECT at FROM rate_limit_hits
             WHERE bucket = p_bucket AND at > now() - make_interval(secs => p_window_seconds)
             ORDER BY at DESC LIMIT p_limit) h
  $$;
REVOKE ALL ON FUNCTION rate_limit_wait(text, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rate_limit_wait(text, int, int) TO {RUNTIME_ROLE};
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0045_display_names_unbounded")]

    initial = False

    operations = [
        ops.RunSQL(SQL, reverse_sql="DROP FUNCTION rate_limit_wait(text, int, int);")
    ]
