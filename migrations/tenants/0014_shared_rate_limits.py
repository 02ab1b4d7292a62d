"""Rate limits shared by every process: each counted attempt is a row of
``rate_limit_hits`` (a bucket, a time), and ``rate_limit_hit`` answers whether a bucket
already had its limit within the window, counting the attempt when it had not: a sliding
window, the same on every node. Buckets are SHA-256 digests of what is limited (a client
address with the limit's name), so the table holds no address in clear; only the
SECURITY DEFINER function reads or writes it, and it drops rows older than a day now and
then."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import RUNTIME_ROLE

SQL = f"""
CREATE TABLE rate_limit_hits (
  id bigserial PRIMARY KEY,
  bucket char(64) NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rate_limit_hits_bucket ON rate_limit_hits (bucket, at DESC);
CREATE INDEX rate_limit_hits_at ON rate_limit_hits (at);

CREATE FUNCTION rate_limit_hit(p_bucket text, p_window_seconds int, p_limit int)
  RETURNS int LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public
  AS $$
    DECLARE
      recent int;
      oldest timestamptz;
      window_ interval := make_interval(secs => p_window_seconds);
    BEGIN
      SELECT count(*), min(h.at) INTO recent, oldest FROM (
        SELECT at FROM rate_limit_hits
         WHERE bucket = p_bucket AND at > now() - window_
         ORDER BY at DESC LIMIT p_limit) h;
      IF recent >= p_limit THEN
        -- Refused, not counted: the wait ends when the oldest of the last p_limit leaves.
        RETURN greatest(1, ceil(extract(epoch FROM oldest + window_ - now())))::int;
      END IF;
      INSERT INTO rate_limit_hits (bucket) VALUES (p_bucket);
      IF random() < 0.01 THEN
        DELETE FROM rate_limit_hits WHERE at < now() - interval '1 day';
      END IF;
      RETURN 0;
    END
  $$;
REVOKE ALL ON FUNCTION rate_limit_hit(text, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rate_limit_hit(text, int, int) TO {RUNTIME_ROLE};
"""

REVERSE = """
DROP FUNCTION rate_limit_hit(text, int, int);
DROP TABLE rate_limit_hits;
"""


class Migration(base.Migration):
    dependencies = [("tenants", "0013_service_metrics")]

    initial = False

    operations = [ops.RunSQL(SQL, reverse_sql=REVERSE)]
