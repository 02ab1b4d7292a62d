"""Searching names ignores accents: "garcia" finds García, "ecole" finds École.

A newcomer searched the members of a school for "ada garcia" and found nobody: the
trigram indexes (migrations 0018, 0023) folded case but not accents. Names are now matched
through ``search_key`` (upper case, accents removed by the trusted ``unaccent``
extension), with the trigram indexes of members' and units' names built on it. Addresses
keep their index on ``upper(email)``: accents are rare in them, and an address is typed
as it is spelt.

``unaccent(regdictionary, text)`` is only STABLE (its dictionary could change), so an
index cannot use it directly; ``search_key`` names the dictionary and is declared
IMMUTABLE, the usual way round it (the dictionary is this extension's own, which only an
upgrade of it changes: rebuild the two indexes then).
"""

from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import CURRENT_TENANT


def searches(name: str, pattern: str) -> str:
    """``members_matching`` and ``units_matching`` (as 0018, 0023 and 0032 made them),
    comparing the name expression ``name`` with the pattern expression ``pattern`` (each
    the expression its index is built on); addresses always by ``upper``."""
    return f"""
CREATE OR REPLACE FUNCTION members_matching(p_pattern text, p_limit int) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  SET plan_cache_mode = force_custom_plan AS $$
    WITH found AS MATERIALIZED (
      SELECT id FROM members
       WHERE tenant_id = {CURRENT_TENANT}
         AND (upper(email::varchar) LIKE upper(p_pattern)
              OR {name} LIKE {pattern}))
    SELECT id FROM found LIMIT p_limit
$$;
CREATE OR REPLACE FUNCTION units_matching(p_pattern text, p_limit int) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  SET plan_cache_mode = force_custom_plan AS $$
    WITH found AS MATERIALIZED (
      SELECT id FROM units
       WHERE tenant_id = {CURRENT_TENANT} AND {name} LIKE {pattern})
    SELECT id FROM found LIMIT p_limit
$$;
"""


FOLDED = """
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;

CREATE FUNCTION search_key(p_text text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN upper(public.unaccent('public.unaccent'::regdictionary, p_text));

CREATE INDEX members_name_folded_trgm ON members USING gin (search_key(name::text) gin_trgm_ops);
DROP INDEX members_name_trgm;
CREATE INDEX units_name_folded_trgm ON units USING gin (search_key(name::text) gin_trgm_ops);
DROP INDEX units_name_trgm;
""" + searches("search_key(name::text)", "search_key(p_pattern)")

BACK = (
    searches("upper(name::varchar)", "upper(p_pattern)")
    + """
CREATE INDEX members_name_trgm ON members USING gin (upper(name::varchar) gin_trgm_ops);
DROP INDEX members_name_folded_trgm;
CREATE INDEX units_name_trgm ON units USING gin (upper(name::varchar) gin_trgm_ops);
DROP INDEX units_name_folded_trgm;
DROP FUNCTION search_key(text);
"""
)


class Migration(base.Migration):
    dependencies = [("tenants", "0036_api_token_made_by_form")]

    initial = False

    operations = [ops.RunSQL(FOLDED, reverse_sql=BACK)]
