"""Bounded growth (issue 17): the append-only, high-volume tables are partitioned by month.

- ``access_log`` (by ``checked_at``), ``sign_ins`` (by ``at``) and ``webhook_deliveries``
  (by ``created_at``) become declaratively RANGE-partitioned tables, one partition per
  calendar month in UTC (``<table>_pYYYYMM``) plus a DEFAULT partition
  (``<table>_default``) as a safety net: an insert never fails for want of a partition,
  and ``ensure_time_partitions`` moves what landed there into its month's partition when
  it creates it. The existing rows are copied over (a partition per month they cover, and
  the current month and the next two); the row-level security policy, its FORCE and the
  runtime role's grants are set on the parent, which is the only way in: the runtime role
  has no privilege on any partition.
- A primary key of a partitioned table must contain the partition key: the keys become
  ``(tenant_id, id, <time column>)`` (still led by ``tenant_id``, docs/scaling.md), and
  the deliveries' unique ``(tenant_id, event_id, product_id)`` gets ``created_at`` too.
  A delivery row is only ever inserted together with its event (``PUBLISH_SQL``, whose
  event insert is the idempotent one), so no second delivery of one event to one product
  can appear through it.
- SECURITY DEFINER functions let the worker (runtime role) maintain the partitions without
  owning them: ``ensure_time_partitions`` (create ahead, idempotent), ``time_partitions``
  (list them with their ranges), ``time_partition_tenants`` (who has rows in one),
  ``drop_time_partition`` (detach and drop one that is empty and in the past) and
  ``longest_retention_days`` (the longest period any organisation keeps a table's rows,
  read as the owner through a SELECT policy of its own on ``retention_policies``).
- ``retention_policies`` gets the periods of the issue, with its defaults for existing
  rows: access-check log 400 days, sign-ins 400 days, finished jobs 14 days.
- The runtime role may now DELETE from ``access_log`` (retention removes expired checks).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import OWNER_ROLE, RUNTIME_ROLE, grant_runtime, row_level_security

#: (table, time column, runtime grants, unique constraints beside the primary key)
PARTITIONED: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("access_log", "checked_at", "SELECT, INSERT, DELETE", ()),
    ("sign_ins", "at", "SELECT, INSERT, DELETE", ()),
    ("webhook_deliveries", "created_at", "SELECT, INSERT, UPDATE, DELETE",
     (("uid_webhook_del_tenant__e665e1", "tenant_id, event_id, product_id, created_at"),)),
)

#: Months ahead of the current one that the migration creates (the worker keeps as many).
AHEAD = 2


def partition_by_time(
    table: str, column: str, grants: str, uniques: tuple[tuple[str, str], ...]
) -> str:
    """Replace ``table`` by a partitioned copy with its rows, indexes, keys, policy and
    grants. Secondary indexes and foreign keys are recreated from their definitions."""
    unique_sql = "\n".join(
        f"ALTER TABLE public.{table} ADD CONSTRAINT {name} UNIQUE ({columns});"
        for name, columns in uniques
    )
    return f"""
DO $$
DECLARE
  indexes text[];
  keys text[];
  forced text[];
  definition text;
  oldest timestamptz;
  lo timestamptz;
  hi timestamptz;
  seq text := pg_get_serial_sequence('public.{table}', 'id');
BEGIN
  -- The owner copies every organisation's rows: without FORCE it bypasses the policy.
  ALTER TABLE public.{table} NO FORCE ROW LEVEL SECURITY;
  SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{{}}') INTO indexes
    FROM pg_index i WHERE i.indrelid = 'public.{table}'::regclass
     AND NOT i.indisprimary AND NOT i.indisunique;
  SELECT coalesce(array_agg(format('ALTER TABLE public.{table} ADD CONSTRAINT %I %s',
                                   c.conname, pg_get_constraintdef(c.oid))), '{{}}') INTO keys
    FROM pg_constraint c WHERE c.conrelid = 'public.{table}'::regclass AND c.contype = 'f';
  -- Validating a foreign key of a partition reads the referenced table as the owner,
  -- whom FORCEd row-level security would show nothing: lifted for the validation only.
  SELECT coalesce(array_agg(DISTINCT c.confrelid::regclass::text), '{{}}') INTO forced
    FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
   WHERE c.conrelid = 'public.{table}'::regclass AND c.contype = 'f'
     AND r.relforcerowsecurity;
  CREATE TABLE public.{table}_partitioned (LIKE public.{table} INCLUDING DEFAULTS)
    PARTITION BY RANGE ({column});
  SELECT min({column}) INTO oldest FROM public.{table};
  lo := date_trunc('month', least(coalesce(oldest, now()), now()) AT TIME ZONE 'UTC')
        AT TIME ZONE 'UTC';
  WHILE lo < (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '{AHEAD + 1} months')
             AT TIME ZONE 'UTC' LOOP
    hi := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    EXECUTE format('CREATE TABLE public.%I PARTITION OF public.{table}_partitioned '
                   'FOR VALUES FROM (%L) TO (%L)',
                   '{table}_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM'), lo, hi);
    lo := hi;
  END LOOP;
  CREATE TABLE public.{table}_default PARTITION OF public.{table}_partitioned DEFAULT;
  INSERT INTO public.{table}_partitioned SELECT * FROM public.{table};
  IF seq IS NOT NULL THEN
    EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', seq);
  END IF;
  DROP TABLE public.{table};
  ALTER TABLE public.{table}_partitioned RENAME TO {table};
  ALTER TABLE public.{table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (tenant_id, id, {column});
  {unique_sql}
  FOREACH definition IN ARRAY indexes LOOP
    EXECUTE definition;
  END LOOP;
  -- (the tables FORCEd, as read above)
  FOREACH definition IN ARRAY forced LOOP
    EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', definition);
  END LOOP;
  FOREACH definition IN ARRAY keys LOOP
    EXECUTE definition;
  END LOOP;
  FOREACH definition IN ARRAY forced LOOP
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', definition);
  END LOOP;
  IF seq IS NOT NULL THEN
    EXECUTE format('ALTER SEQUENCE %s OWNED BY public.{table}.id', seq);
  END IF;
END $$;
{row_level_security(table)}
{grant_runtime(table, grants)}"""


FUNCTIONS = f"""
CREATE FUNCTION time_partitioned() RETURNS TABLE (parent text, key_column text)
  LANGUAGE sql IMMUTABLE
  AS $$ VALUES ('access_log', 'checked_at'), ('sign_ins', 'at'),
               ('webhook_deliveries', 'created_at') $$;

-- The monthly partitions (not the DEFAULT one) with their ranges, read from their names.
CREATE FUNCTION time_partitions()
  RETURNS TABLE (parent text, partition text, range_from timestamptz, range_to timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET timezone = 'UTC'
  AS $$
    SELECT t.parent, c.relname::text,
           to_timestamp(right(c.relname, 6), 'YYYYMM'),
           to_timestamp(right(c.relname, 6), 'YYYYMM') + interval '1 month'
      FROM time_partitioned() t
      JOIN pg_inherits i ON i.inhparent = ('public.' || t.parent)::regclass
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE c.relname ~ ('^' || t.parent || '_p[0-9]{{6}}$')
     ORDER BY 1, 3
  $$;

-- Create the partitions of the month of p_now and of the p_months after it, where
-- missing; returns the names created. Rows that went to the DEFAULT partition for want of
-- one are moved into it. Serialised between workers by a transaction advisory lock.
CREATE FUNCTION ensure_time_partitions(p_now timestamptz, p_months int)
  RETURNS SETOF text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  SET timezone = 'UTC'
  AS $$
DECLARE
  t record;
  m int;
  lo timestamptz;
  hi timestamptz;
  part text;
  stray boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.time_partitions'));
  FOR t IN SELECT * FROM time_partitioned() LOOP
    FOR m IN 0..greatest(p_months, 0) LOOP
      lo := (date_trunc('month', p_now AT TIME ZONE 'UTC') + make_interval(months => m))
            AT TIME ZONE 'UTC';
      hi := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
      part := t.parent || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
      CONTINUE WHEN to_regclass('public.' || part) IS NOT NULL;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                     t.parent || '_default', t.key_column, t.key_column)
        INTO stray USING lo, hi;
      IF stray THEN
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', part, t.parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved',
                       t.parent || '_default', t.key_column, t.key_column, part)
          USING lo, hi;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       t.parent, part, lo, hi);
      ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       part, t.parent, lo, hi);
      END IF;
      EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, {RUNTIME_ROLE}', part);
      RETURN NEXT part;
    END LOOP;
  END LOOP;
END $$;

-- Which organisations have rows in one monthly partition, and how many (ids and counts
-- only, like organisation_ids()).
CREATE FUNCTION time_partition_tenants(p_partition text)
  RETURNS TABLE (tenant_id uuid, row_count bigint)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM time_partitions() p WHERE p.partition = p_partition) THEN
    RAISE EXCEPTION 'not a time partition: %', p_partition USING ERRCODE = '22023';
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT tenant_id, count(*) FROM %I GROUP BY tenant_id ORDER BY tenant_id', p_partition);
END $$;

-- Detach and drop one monthly partition, only if it is empty and its month is over (the
-- caller has removed every organisation's rows, each in its audited transaction); true
-- when it was dropped, false when it is not there or still holds rows.
CREATE FUNCTION drop_time_partition(p_partition text)
  RETURNS boolean
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  p record;
  has_rows boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.time_partitions'));
  SELECT * INTO p FROM time_partitions() t WHERE t.partition = p_partition;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF p.range_to > now() THEN
    RAISE EXCEPTION 'partition % is not over yet', p_partition USING ERRCODE = '22023';
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', p_partition) INTO has_rows;
  IF has_rows THEN
    RETURN false;
  END IF;
  EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', p.parent, p_partition);
  EXECUTE format('DROP TABLE %I', p_partition);
  RETURN true;
END $$;

CREATE POLICY owner_maintenance ON retention_policies FOR SELECT TO {OWNER_ROLE} USING (true);

-- The longest period (days) any organisation keeps rows of one kind: its own period, or
-- p_default where it set none.
CREATE FUNCTION longest_retention_days(p_column text, p_default int)
  RETURNS int
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  days int;
BEGIN
  IF p_column NOT IN ('access_log_days', 'sign_in_days', 'webhook_delivery_days') THEN
    RAISE EXCEPTION 'not a partitioned retention period: %', p_column USING ERRCODE = '22023';
  END IF;
  EXECUTE format('SELECT max(coalesce(r.%I, $1)) FROM organisations o '
                 'LEFT JOIN retention_policies r ON r.tenant_id = o.id', p_column)
    INTO days USING p_default;
  RETURN coalesce(days, p_default);
END $$;

REVOKE ALL ON FUNCTION time_partitions(), ensure_time_partitions(timestamptz, int),
  time_partition_tenants(text), drop_time_partition(text), longest_retention_days(text, int)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION time_partitions(), ensure_time_partitions(timestamptz, int),
  time_partition_tenants(text), drop_time_partition(text), longest_retention_days(text, int)
  TO {RUNTIME_ROLE};
"""

#: New retention periods (field, default days): the access-check log, the sign-in log, and
#: jobs that finished.
PERIODS = (("access_log_days", 400), ("sign_in_days", 400), ("finished_job_days", 14))


class AddPeriod(ops.AddField):
    """``AddField`` whose column gets its default in the database too, so the rows already
    there (organisations that changed their policy) take it."""

    def __init__(self, name: str, days: int) -> None:
        super().__init__(model_name="RetentionPolicy", name=name,
                         field=fields.IntField(default=days))
        self.days = days

    async def database_forward(self, app_label: str, old_state: Any, new_state: Any,
                               state_editor: Any = None) -> None:
        if state_editor is None:
            return
        await state_editor._run_sql(
            f"ALTER TABLE retention_policies ADD COLUMN {self.name} integer NOT NULL "
            f"DEFAULT {self.days};"
        )


class Migration(base.Migration):
    dependencies = [("tenants", "0021_sign_ins_erasable")]

    initial = False

    operations = [
        *[AddPeriod(name, days) for name, days in PERIODS],
        *[ops.RunSQL(partition_by_time(*spec)) for spec in PARTITIONED],
        ops.RunSQL(FUNCTIONS),
    ]
