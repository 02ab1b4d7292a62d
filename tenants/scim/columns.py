"""Where each attribute of a User and of a Group is kept: the SELECTs that read them and
the column maps filters and sorting are translated with (the whitelist of
``tenants.scim.filters``). An attribute a map does not name cannot be filtered on."""

from __future__ import annotations

from tenants.scim.documents import ACTIVE_UNASSIGNED
from tenants.scim.errors import InvalidFilterError
from tenants.scim.filters import Column, Composite, Elements, Scalar, json_column
from tenants.scim.schemas import ENTERPRISE_URN, GROUPS, USERS, Binding, ResourceKind

#: The stored document, or the defaults of a member SCIM never wrote (as ``UserRecord.stored``).
DOC = (
    "COALESCE(s.attributes, jsonb_build_object('displayName', m.name, 'emails', "
    "jsonb_build_array(jsonb_build_object('value', m.email, 'type', 'work', 'primary', true))))"
)

USER_SELECT = """
SELECT m.id, m.email, m.name, m.status, m.external_id, m.manager_id, m.unit_id, m.created_at,
       GREATEST(m.updated_at, s.updated_at) AS updated_at, s.user_name, s.attributes,
       (SELECT json_agg(json_build_array(g.id, g.name) ORDER BY g.name, g.id)
          FROM group_memberships gm
          JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
         WHERE gm.tenant_id = m.tenant_id AND gm.member_id = m.id) AS groups
  FROM members m
  LEFT JOIN scim_users s ON s.tenant_id = m.tenant_id AND s.id = m.id
"""
#: Members SCIM shows: all but the purged and those it deleted.
USER_VISIBLE = "m.tenant_id = $1 AND m.status <> 'purged' AND s.deleted_at IS NULL"


_GROUPS_OF_MEMBER = (
    "(SELECT g.id::text AS value, g.name AS display, 'direct'::text AS type "
    "FROM group_memberships gm JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id "
    "WHERE gm.tenant_id = m.tenant_id AND gm.member_id = m.id)"
)


class UserColumns:
    """Where each User attribute is kept, for filters and sorting (the whitelist)."""

    kind: ResourceKind = USERS

    def column(self, binding: Binding) -> Column:
        name = binding.attribute.name
        if binding.urn == "":
            if name == "id":
                return Scalar("m.id::text", "text")
            if name == "externalId":
                return Scalar("m.external_id", "text")
            return meta_column(
                "m.created_at", "GREATEST(m.updated_at, s.updated_at)", "User", binding
            )
        if binding.urn == ENTERPRISE_URN:
            if name == "manager":
                return narrow(
                    binding,
                    Composite(
                        {
                            "value": Scalar("m.manager_id::text", "text"),
                            "displayname": Scalar(
                                "(SELECT mm.name FROM members mm "
                                "WHERE mm.tenant_id = m.tenant_id AND mm.id = m.manager_id)",
                                "text",
                            ),
                        }
                    ),
                )
            return narrow(binding, json_column(f"({DOC} -> '{ENTERPRISE_URN}')", binding.attribute))
        if name == "userName":
            return Scalar("COALESCE(s.user_name, m.email)", "text")
        if name == "active":
            return Scalar(
                f"(CASE WHEN s.attributes ? '{ACTIVE_UNASSIGNED}' THEN NULL ELSE m.status = 'active' END)",
                "bool",
            )
        if name == "groups":
            return Elements(
                source=lambda a: f"{_GROUPS_OF_MEMBER} AS {a}",
                subs=lambda a: {
                    "value": Scalar(f"{a}.value", "text"),
                    "display": Scalar(f"{a}.display", "text"),
                    "type": Scalar(f"{a}.type", "text"),
                },
            )
        return narrow(binding, json_column(DOC, binding.attribute))


def narrow(binding: Binding, column: Column) -> Column:
    """A sub-attribute of a singular complex attribute is a scalar of its own."""
    if binding.sub is not None and isinstance(column, Composite):
        found = column.subs.get(binding.sub.name.lower())
        if found is None:
            raise InvalidFilterError(f"{binding} cannot be filtered on")
        return found
    return column


def meta_column(created: str, modified: str, resource_type: str, binding: Binding) -> Column:
    subs = {
        "created": Scalar(created, "time"),
        "lastmodified": Scalar(modified, "time"),
        "resourcetype": Scalar(f"'{resource_type}'::text", "text"),
    }
    return narrow(binding, Composite(subs))


USER_COLUMNS = UserColumns()


#: Members a Group shows: those SCIM shows as Users.
_VISIBLE_MEMBERS = """
  FROM group_memberships gm
  JOIN members mm ON mm.tenant_id = gm.tenant_id AND mm.id = gm.member_id
  LEFT JOIN scim_users su ON su.tenant_id = mm.tenant_id AND su.id = mm.id
 WHERE gm.tenant_id = g.tenant_id AND gm.group_id = g.id
   AND mm.status <> 'purged' AND su.deleted_at IS NULL
"""

GROUP_SELECT = f"""
SELECT g.id, g.name, sg.external_id, g.created_at,
       GREATEST(g.updated_at, sg.updated_at) AS updated_at,
       (SELECT json_agg(gm.member_id ORDER BY gm.created_at, gm.member_id) {_VISIBLE_MEMBERS}) AS members
  FROM groups g
  LEFT JOIN scim_groups sg ON sg.tenant_id = g.tenant_id AND sg.id = g.id
"""  # noqa: S608 - composed of constants
GROUP_VISIBLE = "g.tenant_id = $1"


class GroupColumns:
    """Where each Group attribute is kept, for filters and sorting (the whitelist)."""

    kind: ResourceKind = GROUPS

    def column(self, binding: Binding) -> Column:
        name = binding.attribute.name
        if binding.urn == "":
            if name == "id":
                return Scalar("g.id::text", "text")
            if name == "externalId":
                return Scalar("sg.external_id", "text")
            return meta_column(
                "g.created_at", "GREATEST(g.updated_at, sg.updated_at)", "Group", binding
            )
        if name == "displayName":
            return Scalar("g.name", "text")
        if name == "members":
            return Elements(
                source=lambda a: (
                    "(SELECT gm.member_id::text AS value, 'User'::text AS type "
                    f"{_VISIBLE_MEMBERS}) AS {a}"
                ),
                subs=lambda a: {
                    "value": Scalar(f"{a}.value", "text"),
                    "type": Scalar(f"{a}.type", "text"),
                },
            )
        return narrow(binding, Composite({}))


GROUP_COLUMNS = GroupColumns()
