"""SCIM resources ↔ members and groups: validation, mapping and rendering; no I/O.

A User is read from three places: the member row (email, name, unit, manager, status,
externalId), the SCIM row (``userName`` and the attributes the member has no column for,
kept as the client sent them, RFC 7643 §2) and the member's groups. Writing goes the
other way: the client's document is validated against the published schemas, then
split into the member's fields (``derive_member``) and the stored document.

Mapping rules (also in the README):

- ``emails`` → the member's email: the primary address, else the first, else
  ``userName`` when it is an address; a User with none gets the undeliverable
  ``scim-<id>@scim.invalid`` (RFC 2606) until one is provisioned;
- ``displayName``, else ``name.formatted``, else given and family name, else
  ``userName`` → the member's name;
- ``active`` ↔ the member's status ``active`` (every other status reads as false);
- ``externalId`` ↔ the member's ``external_id``; enterprise ``manager.value`` ↔ the
  member's manager;
- the organisation's unit attribute (enterprise ``department`` by default) → the unit
  (``match_unit``).
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from scim2_models import Extension, PatchOp, Resource, Schema

from tenants.scim import dialects
from tenants.scim.errors import InvalidValueError
from tenants.scim.schemas import (
    ENTERPRISE_URN,
    GROUP_URN,
    GROUPS,
    USER_URN,
    USERS,
    published_schemas,
)
from tenants.scim.validation import validate

#: Attributes of a User document that live elsewhere than the stored JSON.
_USER_ELSEWHERE = frozenset({"schemas", "id", "meta", "externalId", "userName", "active", "groups"})
#: Enterprise attributes that can name a member's unit.
UNIT_ATTRIBUTES = ("department", "division", "organization", "costCenter")
PLACEHOLDER_DOMAIN = "scim.invalid"
#: Kept in the stored document once a client removed ``active`` (PATCH remove, or a PUT
#: without it): the member's status stays as it is and ``active`` reads as unassigned
#: until a client sets it again. No client can send this key (it is in no schema).
ACTIVE_UNASSIGNED = "tenantry:activeUnassigned"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@functools.cache
def user_model() -> type[Resource[Any]]:
    """``User[EnterpriseUser]`` as published (built from the schema documents, so what is
    validated is exactly what ``/Schemas`` announces)."""
    docs = published_schemas()
    core = Resource.from_schema(Schema.model_validate(docs[USER_URN]))
    enterprise = Extension.from_schema(Schema.model_validate(docs[ENTERPRISE_URN]))
    model: type[Resource[Any]] = core[enterprise]  # type: ignore[index]
    return model


@functools.cache
def group_model() -> type[Resource[Any]]:
    return Resource.from_schema(Schema.model_validate(published_schemas()[GROUP_URN]))


@functools.cache
def patch_model(model: type[Resource[Any]]) -> type[PatchOp[Any]]:
    patch: type[PatchOp[Any]] = PatchOp[model]  # type: ignore[valid-type]
    return patch


def _without(payload: Mapping[str, Any], ignored: frozenset[str]) -> dict[str, Any]:
    lowered = {name.lower() for name in ignored}
    return {k: v for k, v in payload.items() if not (isinstance(k, str) and k.lower() in lowered)}


def user_document(payload: Any) -> UserDocument:
    """A User body (POST, PUT, or the result of a PATCH) checked and split; the enterprise
    ``manager`` may be given as a plain id (``tenants.scim.dialects.user_body``); an entry
    of a multi-valued attribute given twice is kept once (``without_repeats``)."""
    return split_user(without_repeats(validate(USERS, dialects.user_body(payload))))


def without_repeats(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each multi-valued attribute's repeated entries dropped: an entry with
    the ``type`` and ``value`` of an earlier one is the same entry (RFC 7643 §2.4), and an
    ``add`` of a value already there changes nothing (RFC 7644 §3.5.2.1); scim2-models
    appends it whole. A dropped repeat that was primary makes the kept entry primary.
    Values compare without case where their attribute does (an address), types always.
    Applied to every User body (POST, PUT, a PATCH's result, bulk)."""
    out = dict(doc)
    for name, items in doc.items():
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            continue
        kept: dict[tuple[Any, Any], dict[str, Any]] = {}
        for item in items:
            value, kind = item.get("value"), item.get("type")
            if not isinstance(value, str | int | float) or not isinstance(kind, str | None):
                kept[(id(item), None)] = item  # nothing to compare it by: kept as it is
                continue
            # Types compare without case (RFC 7643 §8.7.1: caseExact false); so do addresses.
            key = (
                value.lower() if name == "emails" and isinstance(value, str) else value,
                kind.lower() if kind else kind,
            )
            first = kept.get(key)
            if first is None:
                kept[key] = item
            elif item.get("primary") is True and first.get("primary") is not True:
                kept[key] = {**first, "primary": True}
        if len(kept) != len(items):
            out[name] = list(kept.values())
    return out


def group_document(payload: Any) -> GroupDocument:
    """A Group body checked and split. Members' ``display`` is not part of the published
    Group schema (a member's name is the User's); identity providers that send it anyway
    are not refused for it, nor for Entra's ADSCIM schema URI
    (``tenants.scim.dialects.group_body``)."""
    payload = dialects.group_body(payload)
    if isinstance(payload, dict):
        payload = dict(payload)
        for key, value in payload.items():
            if isinstance(key, str) and key.lower() == "members" and isinstance(value, list):
                payload[key] = [
                    _without(item, frozenset({"display"})) if isinstance(item, dict) else item
                    for item in value
                ]
    return split_group(validate(GROUPS, payload))


def dump(resource: Resource[Any]) -> dict[str, Any]:
    """A resource as JSON with the schemas' attribute names, unassigned values left out."""
    pruned: dict[str, Any] = _pruned(
        resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    return pruned


def _pruned(value: Any) -> Any:
    """RFC 7643 §2.5: an empty array or complex value is unassigned; leave it out."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_pruned(v) for v in value if v not in (None, {})]
    return value


# --- Users -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserDocument:
    """A User as the client wants it, split by where each part is stored."""

    user_name: str
    external_id: str | None
    active: bool | None
    #: The stored JSON: core attributes and the enterprise extension, manager excluded.
    attributes: dict[str, Any]
    #: The enterprise ``manager.value`` as given (checked against members when written).
    manager: str | None


def split_user(document: Mapping[str, Any]) -> UserDocument:
    """Split a validated User (as dumped by ``dump``) into what is stored where.

    InvalidValueError when ``userName`` is missing or blank (RFC 7643 §4.1.1: REQUIRED).
    """
    user_name = str(document.get("userName") or "").strip()
    if not user_name:
        raise InvalidValueError("userName is required")
    if len(user_name) > 320:
        raise InvalidValueError("userName is longer than 320 characters")
    external_id = document.get("externalId")
    if external_id is not None and len(str(external_id)) > 255:
        raise InvalidValueError("externalId is longer than 255 characters")
    attributes = {k: v for k, v in document.items() if k not in _USER_ELSEWHERE}
    manager = None
    enterprise = dict(attributes.pop(ENTERPRISE_URN, None) or {})
    given = enterprise.pop("manager", None)
    if isinstance(given, dict) and given.get("value"):
        manager = str(given["value"])
    if enterprise:
        attributes[ENTERPRISE_URN] = enterprise
    active = document.get("active")
    return UserDocument(
        user_name=user_name,
        external_id=str(external_id) if external_id is not None else None,
        active=active if isinstance(active, bool) else None,
        attributes=attributes,
        manager=manager,
    )


def parse_member_id(value: str | None, what: str) -> uuid.UUID | None:
    """A member id given in a document (manager, group member); invalidValue if it is
    not an id at all (whether it names a member is checked against the database)."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidValueError(f"{what} {value!r} is not the id of a User") from None


def member_email(user_name: str, attributes: Mapping[str, Any]) -> str:
    """The member's email for a User (the rule in the module docstring), lower-cased. A
    User without an address gets a placeholder that is unique while its ``userName`` is."""
    emails = [e for e in attributes.get("emails") or [] if isinstance(e, dict)]
    ordered = [e for e in emails if e.get("primary") is True] + [
        e for e in emails if e.get("primary") is not True
    ]
    for candidate in [*(e.get("value") for e in ordered), user_name]:
        if isinstance(candidate, str) and _EMAIL.match(candidate.strip()) and len(candidate) <= 320:
            return candidate.strip().lower()
    seed = hashlib.sha256(user_name.lower().encode()).hexdigest()[:32]
    return f"scim-{seed}@{PLACEHOLDER_DOMAIN}"


def member_name(user_name: str, attributes: Mapping[str, Any]) -> str:
    """The member's name for a User (the rule in the module docstring)."""
    name = attributes.get("name") if isinstance(attributes.get("name"), dict) else {}
    assert isinstance(name, dict)
    joined = " ".join(
        str(name[part]).strip() for part in ("givenName", "familyName") if name.get(part)
    )
    for candidate in (attributes.get("displayName"), name.get("formatted"), joined, user_name):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:200]
    return user_name[:200]


def unit_value(attributes: Mapping[str, Any], unit_attribute: str) -> str | None:
    """The value naming the member's unit (the organisation's unit attribute), if any."""
    enterprise = attributes.get(ENTERPRISE_URN) or {}
    value = enterprise.get(unit_attribute) if isinstance(enterprise, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class UnitCandidate:
    id: uuid.UUID
    name: str
    #: The names of the unit's ancestors from the root down, then its own.
    names: tuple[str, ...]


def match_unit(value: str, candidates: Iterable[UnitCandidate]) -> uuid.UUID | None:
    """The unit ``value`` names, or None when it names none or several.

    A value without ``/`` is a unit's name, which must be unique in the organisation; a
    value with ``/`` is a path of names from the root down, the root's own name optional
    (``Engineering/Platform`` or ``Acme/Engineering/Platform``). Names compare
    case-insensitively. Units are never created by provisioning.
    """
    wanted = tuple(part.strip().lower() for part in value.split("/") if part.strip())
    if not wanted:
        return None
    found = []
    for unit in candidates:
        names = tuple(n.lower() for n in unit.names)
        if len(wanted) == 1:
            if names[-1] == wanted[0]:
                found.append(unit.id)
        elif names == wanted or names[1:] == wanted:
            found.append(unit.id)
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What the database holds of one User (see ``users.py`` for the query)."""

    id: uuid.UUID
    email: str
    name: str
    status: str
    external_id: str | None
    manager_id: uuid.UUID | None
    unit_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    user_name: str | None = None
    attributes: dict[str, Any] | None = None
    groups: tuple[GroupRef, ...] = field(default_factory=tuple)

    @property
    def is_provisioned(self) -> bool:
        """Whether SCIM has written this member (otherwise it reads with defaults)."""
        return self.user_name is not None

    @property
    def stored(self) -> dict[str, Any]:
        """The stored document, or the defaults of a member SCIM has never written."""
        if self.attributes is not None:
            return self.attributes
        return {
            "displayName": self.name,
            "emails": [{"value": self.email, "type": "work", "primary": True}],
        }


def user_version(record: UserRecord) -> str:
    """A weak entity tag over everything a User shows (RFC 7644 §3.14, RFC 7232)."""
    basis = [
        record.user_name or record.email,
        record.external_id,
        record.status == "active",
        str(record.manager_id) if record.manager_id else None,
        record.stored,
        [[str(g.id), g.name] for g in record.groups],
    ]
    return _weak_tag(basis)


def _weak_tag(basis: Any) -> str:
    canonical = orjson.dumps(basis, option=orjson.OPT_SORT_KEYS, default=str)
    return f'W/"{hashlib.sha256(canonical).hexdigest()[:24]}"'


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def render_user(record: UserRecord, base: str) -> dict[str, Any]:
    """The User as JSON (RFC 7643 §4.1), every attribute the client set echoed back."""
    out: dict[str, Any] = {"schemas": [USER_URN], "id": str(record.id)}
    if record.external_id is not None:
        out["externalId"] = record.external_id
    out["userName"] = record.user_name or record.email
    stored = record.stored
    out.update((k, v) for k, v in stored.items() if k not in (ENTERPRISE_URN, ACTIVE_UNASSIGNED))
    if not stored.get(ACTIVE_UNASSIGNED):
        out["active"] = record.status == "active"
    enterprise = dict(stored.get(ENTERPRISE_URN) or {})
    if record.manager_id is not None:
        enterprise["manager"] = {
            "value": str(record.manager_id),
            "$ref": f"{base}/Users/{record.manager_id}",
        }
    if enterprise:
        out["schemas"].append(ENTERPRISE_URN)
        out[ENTERPRISE_URN] = enterprise
    if record.groups:
        out["groups"] = [
            {
                "value": str(g.id),
                "$ref": f"{base}/Groups/{g.id}",
                "display": g.name,
                "type": "direct",
            }
            for g in record.groups
        ]
    out["meta"] = {
        "resourceType": "User",
        "created": _iso(record.created_at),
        "lastModified": _iso(record.updated_at),
        "location": f"{base}/Users/{record.id}",
        "version": user_version(record),
    }
    return out


def user_for_patch(record: UserRecord, base: str) -> dict[str, Any]:
    """The User as a PATCH starts from: rendered, without the read-only parts."""
    rendered = render_user(record, base)
    for key in ("meta", "groups"):
        rendered.pop(key, None)
    return rendered


# --- Groups ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: uuid.UUID
    name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    member_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupDocument:
    display_name: str
    external_id: str | None
    member_ids: tuple[uuid.UUID, ...] | None


def split_group(document: Mapping[str, Any]) -> GroupDocument:
    """A validated Group (as dumped) as the group's name, externalId and members.

    ``member_ids`` is None when the document does not mention members (a PUT without
    ``members`` empties the group: RFC 7644 §3.5.1 replaces all values).
    """
    name = str(document.get("displayName") or "").strip()
    if not name:
        raise InvalidValueError("displayName is required")
    if len(name) > 200:
        raise InvalidValueError("displayName is longer than 200 characters")
    external_id = document.get("externalId")
    if external_id is not None and len(str(external_id)) > 255:
        raise InvalidValueError("externalId is longer than 255 characters")
    members = document.get("members")
    ids = None
    if members is not None:
        ids = tuple(dict.fromkeys(_member_ids(members)))
    return GroupDocument(name, str(external_id) if external_id is not None else None, ids)


def _member_ids(members: Sequence[Any]) -> Iterable[uuid.UUID]:
    for member in members:
        if not isinstance(member, dict):
            raise InvalidValueError("each of members must be an object with a value")
        if member.get("type") not in (None, "User"):
            raise InvalidValueError("a group's members are Users; groups cannot be nested")
        found = parse_member_id(member.get("value"), "members.value")
        if found is None:
            raise InvalidValueError("each of members needs a value (the id of a User)")
        yield found


def group_version(record: GroupRecord) -> str:
    return _weak_tag([record.name, record.external_id, sorted(str(m) for m in record.member_ids)])


def render_group(record: GroupRecord, base: str) -> dict[str, Any]:
    """The Group as JSON (RFC 7643 §4.2)."""
    out: dict[str, Any] = {"schemas": [GROUP_URN], "id": str(record.id)}
    if record.external_id is not None:
        out["externalId"] = record.external_id
    out["displayName"] = record.name
    if record.member_ids:
        out["members"] = [
            {"value": str(m), "$ref": f"{base}/Users/{m}", "type": "User"}
            for m in record.member_ids
        ]
    out["meta"] = {
        "resourceType": "Group",
        "created": _iso(record.created_at),
        "lastModified": _iso(record.updated_at),
        "location": f"{base}/Groups/{record.id}",
        "version": group_version(record),
    }
    return out


# --- attributes / excludedAttributes (RFC 7644 §3.9) ----------------------------------------


#: An attribute path as projected: the top-level key as in the resource (an extension's
#: URN for its attributes), then sub-attributes: ("name", "givenName"),
#: ("urn:…:enterprise:2.0:User", "manager", "value").
Path = tuple[str, ...]
#: Paths merged into a tree: a key's subtree, or None for the whole value.
_Tree = dict[str, "_Tree | None"]


def project(
    resource: dict[str, Any], attributes: Sequence[Path], excluded: Sequence[Path]
) -> dict[str, Any]:
    """Keep only ``attributes`` (plus id and schemas, returned always), or drop
    ``excluded`` (never id or schemas), at any depth (RFC 7644 §3.9, §3.10): a path to a
    sub-attribute of a multi-valued attribute applies to each of its values."""
    if attributes:
        kept = _kept(resource, _tree(attributes))
        return {**{k: resource[k] for k in ("schemas", "id") if k in resource}, **kept}
    if excluded:
        tree = {k: v for k, v in _tree(excluded).items() if k not in ("schemas", "id")}
        dropped: dict[str, Any] = _dropped(resource, tree)
        return dropped
    return resource


def _tree(paths: Sequence[Path]) -> _Tree:
    """The paths as one tree; a path that names a whole value wins over its longer ones."""
    root: _Tree = {}
    for path in paths:
        node: _Tree | None = root
        for depth, part in enumerate(path):
            assert node is not None
            if depth == len(path) - 1:
                node[part] = None
            elif part in node and node[part] is None:
                break  # the whole value is wanted already
            else:
                node = node.setdefault(part, {})
    return root


def _kept(value: Any, tree: _Tree) -> Any:
    if isinstance(value, list):
        picked = [_kept(item, tree) for item in value if isinstance(item, dict)]
        return [item for item in picked if item]
    if not isinstance(value, dict):
        return None  # a sub-attribute of a simple value: nothing
    out = {}
    for key, subtree in tree.items():
        if key not in value:
            continue
        inner = value[key] if subtree is None else _kept(value[key], subtree)
        if subtree is None or inner not in (None, [], {}):
            out[key] = inner
    return out


def _dropped(value: Any, tree: _Tree) -> Any:
    if isinstance(value, list):
        return [_dropped(item, tree) if isinstance(item, dict) else item for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: inner if key not in tree else _dropped(inner, tree[key])  # type: ignore[arg-type]
        for key, inner in value.items()
        if not (key in tree and tree[key] is None)
    }
