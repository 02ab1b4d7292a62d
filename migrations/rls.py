"""SQL that makes a table a tenant table; used by the migrations that create tables.

Each tenant table gets:

- the primary key ``(tenant_id, id)`` and composite foreign keys ``(tenant_id, x_id)``, so
  a row can never point at another organisation's row even if the application asks it to
  (foreign-key checks do not see row-level security, composite keys do the job). The
  models declare their links with ``db_constraint=False``; tortoise's migrations still
  create single-column foreign keys, which ``drop_single_column_foreign_keys`` removes
  before the composite ones replace them;
- row-level security ENABLEd and FORCEd, with one policy comparing ``tenant_id`` to the
  transaction-local ``app.tenant_id`` (``NULLIF`` because a pooled connection reports
  ``''`` once a local setting has ended);
- grants for ``tenantry_runtime`` and nothing more.

Migrations are frozen once applied: a later change adds a new migration that calls these
helpers again, never edits an old one.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNTIME_ROLE = "tenantry_runtime"
OWNER_ROLE = "tenantry_owner"
CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"


@dataclass(frozen=True)
class TenantForeignKey:
    column: str
    references: str
    on_delete: str = "RESTRICT"


def drop_single_column_foreign_keys(table: str) -> str:
    """Drop the foreign keys tortoise created, except the one to organisations."""
    return f"""
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT conname FROM pg_constraint
           WHERE conrelid = 'public.{table}'::regclass AND contype = 'f'
             AND confrelid <> 'public.organisations'::regclass
  LOOP
    EXECUTE format('ALTER TABLE public.{table} DROP CONSTRAINT %I', r.conname);
  END LOOP;
END $$;"""


def tenant_primary_key(table: str) -> str:
    return f"""
ALTER TABLE {table} DROP CONSTRAINT {table}_pkey;
ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (tenant_id, id);"""


def tenant_foreign_keys(table: str, keys: list[TenantForeignKey]) -> str:
    statements = []
    for key in keys:
        on_delete = key.on_delete
        if on_delete == "SET NULL":
            on_delete = f"SET NULL ({key.column})"
        statements.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_{key.column}_fkey "
            f"FOREIGN KEY (tenant_id, {key.column}) REFERENCES {key.references} (tenant_id, id) "
            f"ON DELETE {on_delete};"
        )
    return "\n".join(statements)


def row_level_security(table: str, *, column: str = "tenant_id") -> str:
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table}
  USING ({column} = {CURRENT_TENANT})
  WITH CHECK ({column} = {CURRENT_TENANT});"""


def grant_runtime(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    return f"GRANT {privileges} ON {table} TO {RUNTIME_ROLE};"


def referable_ids(tables: list[str]) -> str:
    """Temporary unique indexes on ``id`` alone, for a migration that creates tables linking
    to these: tortoise's migration editor writes single-column foreign keys (it ignores
    ``db_constraint=False``), which need them. The next migration replaces those keys with
    composite ones and drops these indexes with ``drop_referable_ids``."""
    return "\n".join(f"CREATE UNIQUE INDEX {t}_id_referable ON {t} (id);" for t in tables)


def drop_referable_ids(tables: list[str]) -> str:
    return "\n".join(f"DROP INDEX {t}_id_referable;" for t in tables)
