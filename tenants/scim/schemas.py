"""The SCIM schemas this service provider publishes, and the catalogue of their attributes.

The published documents (RFC 7643 §7, served at ``/Schemas``) start from the resource
models of ``scim2-models`` and are then made to say what Tenantry really does:

- ``password`` is left out of User: Tenantry never holds members' passwords (members sign
  in at their organisation's identity provider), so it announces no such attribute and
  ignores one sent anyway (``changePassword.supported`` is false too).
- ``members.display`` is left out of Group and ``members`` refers to Users only: a group
  holds members, not other groups, and a member's name is the User's business.
- ``manager.$ref`` is optional (RFC 7643 §4.3 says RECOMMENDED): identity providers such
  as Microsoft Entra send only ``value``.
- Group ``displayName`` is unique (``uniqueness: server``): group names are unique in an
  organisation.

The same documents are the whitelist filters and paths are checked against
(``resolve``): an attribute they do not declare is unknown, and a filter naming it is
refused with ``invalidFilter`` rather than dropped.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any

from scim2_models import Context, EnterpriseUser, Group, User
from scim2_models import ResourceType as ScimResourceType
from scim2_models import Schema as ScimSchema
from scim2_models import ServiceProviderConfig as ScimServiceProviderConfig

from tenants.scim.errors import UnknownAttributeError

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a published schema (RFC 7643 §7 "attributes")."""

    name: str
    type: str
    multi_valued: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    sub_attributes: dict[str, Attribute] = field(default_factory=dict)

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitively, RFC 7643 §2.1)."""
        return self.sub_attributes.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"


def _attribute(doc: dict[str, Any]) -> Attribute:
    return Attribute(
        name=doc["name"],
        type=doc["type"],
        multi_valued=bool(doc.get("multiValued")),
        case_exact=bool(doc.get("caseExact")),
        mutability=doc.get("mutability", "readWrite"),
        returned=doc.get("returned", "default"),
        sub_attributes={
            sub["name"].lower(): _attribute(sub) for sub in doc.get("subAttributes", [])
        },
    )


def _dump(schema: ScimSchema) -> dict[str, Any]:
    dumped: dict[str, Any] = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return dumped


def _named(attributes: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(a for a in attributes if a["name"] == name)


@functools.cache
def published_schemas() -> dict[str, dict[str, Any]]:
    """The schema documents by id: User, the enterprise extension, Group, and the three
    schemas that describe the discovery resources themselves (RFC 7643 §8.7)."""
    user = _dump(User.to_schema())
    user["attributes"] = [a for a in user["attributes"] if a["name"] != "password"]
    user["description"] = "User Account (a member of the organisation)"

    enterprise = _dump(EnterpriseUser.to_schema())
    enterprise["description"] = "Enterprise User"
    manager = _named(enterprise["attributes"], "manager")
    _named(manager["subAttributes"], "$ref")["required"] = False
    _named(manager["subAttributes"], "$ref")["referenceTypes"] = ["User"]

    group = _dump(Group.to_schema())
    group["description"] = "Group (a Tenantry group)"
    _named(group["attributes"], "displayName")["uniqueness"] = "server"
    members = _named(group["attributes"], "members")
    members["subAttributes"] = [s for s in members["subAttributes"] if s["name"] != "display"]
    _named(members["subAttributes"], "$ref")["referenceTypes"] = ["User"]
    _named(members["subAttributes"], "type")["canonicalValues"] = ["User"]

    documents = {doc["id"]: doc for doc in (user, enterprise, group)}
    for model in (ScimSchema, ScimResourceType, ScimServiceProviderConfig):
        doc = _dump(model.to_schema())
        documents[doc["id"]] = doc
    return documents


@functools.cache
def catalogue(urn: str) -> dict[str, Attribute]:
    """The attributes of the schema ``urn`` by lower-cased name."""
    return {a["name"].lower(): _attribute(a) for a in published_schemas()[urn]["attributes"]}


#: Attributes every resource has (RFC 7643 §3.1), kept out of the schema documents.
COMMON: dict[str, Attribute] = {
    "id": Attribute("id", "string", case_exact=True, mutability="readOnly", returned="always"),
    "externalid": Attribute("externalId", "string", case_exact=True),
    "meta": Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        sub_attributes={
            "resourcetype": Attribute("resourceType", "string", case_exact=True),
            "created": Attribute("created", "dateTime"),
            "lastmodified": Attribute("lastModified", "dateTime"),
            "location": Attribute("location", "reference", case_exact=True),
            "version": Attribute("version", "string", case_exact=True),
        },
    ),
}


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A resource type (RFC 7643 §6): its endpoint, core schema and extensions."""

    name: str
    endpoint: str
    core: str
    extensions: tuple[str, ...] = ()

    @property
    def schemas(self) -> tuple[str, ...]:
        return (self.core, *self.extensions)


USERS = ResourceKind("User", "/Users", USER_URN, (ENTERPRISE_URN,))
GROUPS = ResourceKind("Group", "/Groups", GROUP_URN)
KINDS = (USERS, GROUPS)


@dataclass(frozen=True, slots=True)
class Binding:
    """An attribute path resolved against a resource kind: the attribute's schema (``urn``;
    empty for the common attributes), the attribute and, if named, its sub-attribute."""

    urn: str
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def leaf(self) -> Attribute:
        return self.sub or self.attribute

    def __str__(self) -> str:
        prefix = f"{self.urn}:" if self.urn and self.urn != USER_URN else ""
        suffix = f".{self.sub.name}" if self.sub else ""
        return f"{prefix}{self.attribute.name}{suffix}"


def resolve(kind: ResourceKind, attr: str, sub: str | None, uri: str | None) -> Binding:
    """Bind ``[uri:]attr[.sub]`` to an attribute of ``kind``; InvalidFilterError when no
    published schema of ``kind`` declares it.

    Unqualified names are looked up in the common attributes and the core schema (RFC 7644
    §3.10); an extension's attributes need their schema URN, as in
    ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``.
    """
    urn = ""
    if uri is not None:
        known = {s.lower(): s for s in kind.schemas}
        if uri.lower() not in known:
            raise UnknownAttributeError(f"{uri} is not a schema of {kind.name} resources")
        urn = known[uri.lower()]
        found = catalogue(urn).get(attr.lower())
    else:
        found = COMMON.get(attr.lower())
        if found is None:
            urn = kind.core
            found = catalogue(urn).get(attr.lower())
    if found is None:
        raise UnknownAttributeError(f"{kind.name} resources have no attribute {attr!r}")
    if sub is None:
        return Binding(urn, found)
    sub_attribute = found.sub(sub)
    if sub_attribute is None:
        raise UnknownAttributeError(f"the attribute {found.name} has no sub-attribute {sub!r}")
    return Binding(urn, found, sub_attribute)


def schema_document(urn: str, location: str) -> dict[str, Any]:
    """The published document of ``urn`` with its ``meta`` (RFC 7643 §7)."""
    doc = copy.deepcopy(published_schemas()[urn])
    doc["meta"] = {"resourceType": "Schema", "location": f"{location}/Schemas/{urn}"}
    return doc
