"""Row-level security, tenant-first keys and runtime grants for every tenant table."""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import (
    OWNER_ROLE,
    RUNTIME_ROLE,
    drop_single_column_foreign_keys,
    grant_runtime,
    row_level_security,
    tenant_foreign_keys,
    tenant_primary_key,
)
from migrations.rls import (
    TenantForeignKey as FK,
)

TENANT_TABLES: dict[str, list[FK]] = {
    "units": [FK("parent_id", "units")],
    "groups": [],
    "members": [FK("unit_id", "units"), FK("manager_id", "members", "SET NULL")],
    "group_memberships": [
        FK("group_id", "groups", "CASCADE"),
        FK("member_id", "members", "CASCADE"),
    ],
    "products": [],
    "product_accounts": [FK("member_id", "members"), FK("product_id", "products")],
    "api_tokens": [],
    "audit_heads": [],
    "audit_events": [],
    "sso_connections": [FK("default_unit_id", "units", "SET NULL")],
    "login_attempts": [],
    "sessions": [FK("member_id", "members", "CASCADE")],
    "local_credentials": [FK("member_id", "members", "CASCADE")],
    "product_clients": [FK("product_id", "products", "CASCADE")],
}

# Foreign keys first (they depend on the primary keys), then keys, then the new links.
SQL: list[str] = [drop_single_column_foreign_keys(t) for t in TENANT_TABLES]
SQL += [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [tenant_foreign_keys(t, keys) for t, keys in TENANT_TABLES.items() if keys]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES if t != "audit_events"]
SQL += [
    # The audit log is append-only for the service: no UPDATE, no DELETE, no TRUNCATE.
    grant_runtime("audit_events", "SELECT, INSERT"),
    # Exactly one root unit per organisation.
    "CREATE UNIQUE INDEX units_one_root ON units (tenant_id) WHERE parent_id IS NULL;",
    "ALTER TABLE units ADD CONSTRAINT units_path_nonempty CHECK (path <> '' AND depth >= 0);",
    "ALTER TABLE members ADD CONSTRAINT members_email_lower CHECK (email = lower(email));",
    "CREATE INDEX members_tenant_email_pattern ON members (tenant_id, email text_pattern_ops);",
    "CREATE INDEX units_tenant_path_pattern ON units (tenant_id, path text_pattern_ops);",
    "CREATE INDEX login_attempts_tenant_created ON login_attempts (tenant_id, created_at);",
    # The organisation row is its own tenant.
    row_level_security("organisations", column="id"),
    grant_runtime("organisations", "SELECT, INSERT, UPDATE"),
    # The owner may read the directory of organisations, for the lookups below and for
    # operators' commands; the runtime role may not.
    f"CREATE POLICY owner_directory ON organisations FOR SELECT TO {OWNER_ROLE} USING (true);",
    f"""
CREATE FUNCTION organisation_id_by_slug(p_slug text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT id FROM organisations WHERE slug = lower(p_slug) $$;
CREATE FUNCTION organisation_id_by_domain(p_domain text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT id FROM organisations WHERE domains ? lower(p_domain) AND status = 'active' LIMIT 1 $$;
REVOKE ALL ON FUNCTION organisation_id_by_slug(text), organisation_id_by_domain(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION organisation_id_by_slug(text), organisation_id_by_domain(text) TO {RUNTIME_ROLE};
""",
    # Signing keys belong to the service, not to an organisation: no tenant_id, no RLS.
    # The runtime role creates and retires them but never deletes one.
    grant_runtime("signing_keys", "SELECT, INSERT, UPDATE"),
    f"GRANT USAGE ON SCHEMA public TO {RUNTIME_ROLE};",
    f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {RUNTIME_ROLE};",
    f"GRANT SELECT ON tortoise_migrations TO {RUNTIME_ROLE};",
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} GRANT USAGE ON SEQUENCES TO {RUNTIME_ROLE};",
]


class Migration(base.Migration):
    dependencies = [("tenants", "0001_initial")]

    initial = False

    operations = [ops.RunSQL("\n".join(SQL))]
