"""Workers that can be watched, and member events that arrive in order.

- ``workers``: one row per running job worker, its heartbeat written by the worker's loop
  (``tenants.jobs.worker``). Not organisation data (which processes run, how busy they
  are), so not a tenant table: the runtime role reads and writes every row.
- ``member_event_counters``: the last sequence number given to an event about a member
  (``tenants.webhooks.service.publish``); the row is locked by the publishing transaction,
  so a member's events get gap-free numbers in commit order. A tenant table.
"""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import grant_runtime, row_level_security

SQL = f"""
CREATE TABLE workers (
  name varchar(200) PRIMARY KEY,
  host varchar(255) NOT NULL,
  pid integer NOT NULL,
  concurrency integer NOT NULL,
  running integer NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL
);
CREATE INDEX workers_heartbeat ON workers (heartbeat_at);
{grant_runtime("workers")}

CREATE TABLE member_event_counters (
  tenant_id uuid NOT NULL,
  member_id uuid NOT NULL,
  last_sequence bigint NOT NULL,
  PRIMARY KEY (tenant_id, member_id)
);
{row_level_security("member_event_counters")}
{grant_runtime("member_event_counters")}
"""

REVERSE = "DROP TABLE member_event_counters; DROP TABLE workers;"


class Migration(base.Migration):
    dependencies = [("tenants", "0015_console_lookups")]

    initial = False

    operations = [ops.RunSQL(SQL, reverse_sql=REVERSE)]
