"""The SCIM that identity providers really send, rewritten into RFC 7644 before the strict
machinery sees it; plain Python, no I/O.

Microsoft Entra ID and Okta are the clients that matter, and both send requests a literal
reading of RFC 7643/7644 refuses. Each rewrite here is narrow, named for the request it
accepts and the guide that documents it (the dialect corpus in ``tests/scim/corpus``
replays them); everything else stays as strict as before (unknown operations, unknown
paths, wrong types are still refused with their ``scimType``).

Entra ID (Microsoft, "Tutorial: Develop and plan provisioning for a SCIM endpoint" and
"Known issues and resolutions with SCIM 2.0 protocol compliance"):

- ``op`` capitalised (``Add``, ``Replace``, ``Remove``): RFC 7644 §3.5.2 names them in
  lower case; Microsoft asks servers not to require the case, so ``op`` is lower-cased;
- booleans as the strings ``"True"``/``"False"`` in any case (``active`` without the
  ``aadOptscim062020`` flag): turned into JSON booleans for boolean attributes only;
- ``Remove`` on ``members`` with a ``value`` array of ``{"value": id}``: one remove per
  member, ``members[value eq "id"]`` (removing someone who is not a member changes
  nothing, as removing a value that is not there is idempotent);
- the enterprise ``manager`` as a plain id (``"manager": "123"``), as ``{"value": id}``,
  as a one-element list of it, or under the bare path ``manager``; an empty value (``""``,
  ``{"value": ""}``, null) in an add or replace, any remove, or a remove of
  ``manager[value eq "id"]`` naming the current manager, removes the manager;
- ``Add`` on a filtered path of a multi-valued attribute that has no matching value yet
  (``phoneNumbers[type eq "mobile"].value``) creates the value ``{"type": "mobile",
  "value": ...}`` (RFC 7644 §3.5.2.1: add on a multi-valued attribute adds a value);
  ``Replace`` of a value no filter matches stays ``noTarget`` (§3.5.2.3);
- a Group created with Microsoft's ``ADSCIM/2.0/Group`` schema URI beside the core one:
  that URI is dropped (it declares no attribute).

Okta ("SCIM 2.0 protocol reference", "Build a SCIM provisioning integration"):

- group members carrying ``display`` (and ``$ref``, ``type``) in PATCH add and replace:
  ``display`` is dropped, as on POST and PUT (a member's name is the User's business);
- a path-less replace of a Group carrying its own ``id``: dropped when it is the Group's
  id (read-only and unchanged), left to be refused otherwise;
- a PATCH setting ``password`` (password sync): the operation is dropped; Tenantry keeps
  no SCIM passwords (members sign in at their identity provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scim2_models.path.grammar import _parse_path  # the PATCH/attribute path grammar

from tenants.scim.schemas import (
    ENTERPRISE_URN,
    GROUPS,
    USERS,
    Attribute,
    ResourceKind,
    catalogue,
)

#: The schema URI Entra puts beside the core Group schema on POST /Groups.
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
_OPS = frozenset({"add", "replace", "remove"})
_MANAGER_PATHS = frozenset({"manager", f"{ENTERPRISE_URN}:manager".lower()})


def boolean_text(value: Any) -> bool | None:
    """``"true"``/``"false"`` in any case as a boolean; None for anything else."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def manager_value(value: Any) -> dict[str, Any] | None:
    """The enterprise ``manager`` as ``{"value": id}`` from the shapes Entra sends; None
    when it says "no manager"; anything unrecognised is returned as is for the schema
    check to refuse."""
    if isinstance(value, list) and len(value) <= 1:
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, Mapping):
        given = {k: v for k, v in value.items() if v is not None}
        if given.get("value") in (None, ""):
            return None
        return given
    return value  # type: ignore[no-any-return]


def user_body(payload: Any) -> Any:
    """A User body (POST, PUT, bulk) with the enterprise ``manager`` given as a plain id
    read as ``{"value": id}`` (Microsoft's schema example sends ``"manager": "123456"``)."""
    if not isinstance(payload, Mapping):
        return payload
    out = dict(payload)
    for key, value in payload.items():
        if (
            isinstance(key, str)
            and key.lower() == ENTERPRISE_URN.lower()
            and isinstance(value, Mapping)
        ):
            extension = dict(value)
            for name, given in value.items():
                if isinstance(name, str) and name.lower() == "manager":
                    extension[name] = manager_value(given)
            out[key] = extension
        elif isinstance(key, str) and key.lower() in _MANAGER_PATHS - {"manager"}:
            out[key] = manager_value(value)
    return out


def group_body(payload: Any) -> Any:
    """A Group body without Entra's ADSCIM schema URI (see the module docstring)."""
    if not isinstance(payload, Mapping):
        return payload
    schemas = payload.get("schemas")
    if not isinstance(schemas, list) or ENTRA_GROUP_SCHEMA not in schemas:
        return payload
    return {**payload, "schemas": [s for s in schemas if s != ENTRA_GROUP_SCHEMA]}


def patch_message(kind: ResourceKind, payload: Any, current: Mapping[str, Any]) -> Any:
    """The PatchOp ``payload`` rewritten into RFC 7644 form for a resource of ``kind``
    that currently reads ``current``; a message this module has nothing to say about is
    returned unchanged (and is then checked as strictly as any other).

    Operations that do nothing here (a password) are left out: a message left with no
    operation means "change nothing" (the caller answers with the resource as it is).
    """
    if not isinstance(payload, Mapping):
        return payload
    operations = payload.get("Operations")
    if not isinstance(operations, list):
        return payload
    created: set[tuple[str, str, str]] = set()
    rewritten: list[Any] = []
    for operation in operations:
        if not isinstance(operation, Mapping):
            rewritten.append(operation)
            continue
        rewritten += _operation(kind, dict(operation), current, created)
    return {**payload, "Operations": rewritten}


def changes_nothing(payload: Any, rewritten: Any) -> bool:
    """Whether ``patch_message`` left out every operation of ``payload`` (a password sync,
    say): a request to change nothing. A message sent with no operation at all is not
    this; it is refused as malformed."""
    return (
        isinstance(payload, Mapping)
        and isinstance(rewritten, Mapping)
        and bool(payload.get("Operations"))
        and rewritten.get("Operations") == []
    )


def _operation(
    kind: ResourceKind,
    operation: dict[str, Any],
    current: Mapping[str, Any],
    created: set[tuple[str, str, str]],
) -> list[dict[str, Any]]:
    op = operation.get("op")
    if isinstance(op, str) and op.lower() in _OPS:
        operation["op"] = op = op.lower()
    else:
        return [operation]
    path = operation.get("path")
    if path is None:
        return _pathless(kind, operation, current)
    if not isinstance(path, str):
        return [operation]
    lowered = path.strip().lower()
    if kind is USERS and lowered == "password":
        return []
    if kind is USERS and lowered in _MANAGER_PATHS:
        return [_manager_operation(op, operation)]
    if kind is USERS and op == "remove" and lowered.split("[", 1)[0] in _MANAGER_PATHS:
        return _manager_filtered_remove(operation, path, current)
    if kind is GROUPS and lowered == "members":
        return _members_operation(op, operation)
    if "value" in operation:
        target = _target(kind, path)
        if target is not None:
            operation["value"] = _booleans(operation["value"], target)
    if op == "add":
        return [_add_creating(kind, operation, path, current, created)]
    return [operation]


def _manager_operation(op: str, operation: dict[str, Any]) -> dict[str, Any]:
    path = f"{ENTERPRISE_URN}:manager"
    value = manager_value(operation.get("value")) if op != "remove" else None
    if value is None:
        return {"op": "remove", "path": path}
    return {"op": op, "path": path, "value": value}


def _manager_filtered_remove(
    operation: dict[str, Any], path: str, current: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``manager[value eq "id"]`` (Entra removing a manager): the manager goes if it is
    ``id``; another or none leaves nothing to remove. Other filters stay strict."""
    try:
        node = _parse_path(path)
    except Exception:
        return [operation]
    condition = getattr(node, "val_filter", None)
    field = getattr(condition, "attr_path", None)
    wanted = getattr(condition, "value", None)
    if (
        getattr(node, "sub_attr", None) is not None
        or str(getattr(condition, "op", "")).lower().rsplit(".", 1)[-1] != "eq"
        or str(getattr(field, "attr", "")).lower() != "value"
        or not isinstance(wanted, str)
    ):
        return [operation]
    manager = _get(_get(current, ENTERPRISE_URN) or {}, "manager")
    if isinstance(manager, Mapping) and manager.get("value") == wanted:
        return [{"op": "remove", "path": f"{ENTERPRISE_URN}:manager"}]
    return []


def _members_operation(op: str, operation: dict[str, Any]) -> list[dict[str, Any]]:
    value = operation.get("value")
    if op == "remove":
        items = [value] if isinstance(value, Mapping) else value
        if items == []:
            return []  # no member named: nothing to remove (never "all of them")
        if not isinstance(items, list):
            return [operation]  # no value (all members, RFC 7644 §3.5.2.2) or malformed
        ids = [item.get("value") for item in items if isinstance(item, Mapping)]
        if len(ids) != len(items) or not all(isinstance(i, str) and i for i in ids):
            return [operation]  # malformed: refused by the strict path
        return [
            {"op": "remove", "path": f"members[value eq {_quoted(str(member_id))}]"}
            for member_id in ids
        ]
    operation["value"] = _members_value(value)
    return [operation]


def _members_value(value: Any) -> Any:
    """Group member objects without ``display`` and null ``$ref`` (Okta, Entra)."""
    if not isinstance(value, list):
        return value
    return [
        {k: v for k, v in item.items() if k.lower() != "display" and v is not None}
        if isinstance(item, Mapping)
        else item
        for item in value
    ]


def _pathless(
    kind: ResourceKind, operation: dict[str, Any], current: Mapping[str, Any]
) -> list[dict[str, Any]]:
    value = operation.get("value")
    if operation["op"] == "remove" or not isinstance(value, Mapping):
        return [operation]
    value = dict(value)
    after: list[dict[str, Any]] = []
    for key in list(value):
        lowered = key.lower() if isinstance(key, str) else ""
        unchanged_id = lowered == "id" and kind is GROUPS and value[key] == current.get("id")
        if unchanged_id or (lowered == "password" and kind is USERS):
            del value[key]
        elif lowered == "members" and kind is GROUPS:
            value[key] = _members_value(value[key])
        elif lowered in _MANAGER_PATHS and kind is USERS:
            manager = manager_value(value.pop(key))
            after.append(
                _manager_operation(operation["op"] if manager else "remove", {"value": manager})
            )
        elif (
            lowered == ENTERPRISE_URN.lower() and kind is USERS and isinstance(value[key], Mapping)
        ):
            extension = dict(value[key])
            for name in list(extension):
                if isinstance(name, str) and name.lower() == "manager":
                    manager = manager_value(extension.pop(name))
                    after.append(
                        _manager_operation(
                            operation["op"] if manager else "remove", {"value": manager}
                        )
                    )
            value[key] = _booleans(extension, None, ENTERPRISE_URN)
        elif isinstance(key, str):
            target = _target(kind, key)
            if target is not None:
                value[key] = _booleans(value[key], target)
    if not value and (after or operation.get("value")):
        return after
    return [{**operation, "value": value}, *after]


def _target(kind: ResourceKind, path: str) -> Attribute | None:
    """The attribute (or sub-attribute) ``path`` ends at, or None if it names none."""
    try:
        node = _parse_path(path)
    except Exception:
        return None
    attr_path = getattr(node, "attr_path", node)
    attr, uri = getattr(attr_path, "attr", None), getattr(attr_path, "uri", None)
    sub = getattr(node, "sub_attr", None) or getattr(attr_path, "sub_attr", None)
    if not isinstance(attr, str):
        return None
    urn = kind.core
    if uri is not None:
        urn = next((s for s in kind.schemas if s.lower() == uri.lower()), "")
        if not urn:
            return None
    found = catalogue(urn).get(attr.lower())
    if found is None or sub is None:
        return found
    return found.sub(sub)


def _booleans(value: Any, attribute: Attribute | None, urn: str | None = None) -> Any:
    """``value`` with ``"True"``/``"False"`` strings turned into booleans wherever the
    schema says boolean (``attribute``, or the attributes of the schema ``urn``)."""
    if attribute is None:
        if urn is None or not isinstance(value, Mapping):
            return value
        attributes = catalogue(urn)
        return {
            k: _booleans(v, attributes.get(k.lower())) if isinstance(k, str) else v
            for k, v in value.items()
        }
    if attribute.type == "boolean":
        found = boolean_text(value)
        return value if found is None else found
    if attribute.is_complex:
        if isinstance(value, list):
            return [_booleans(item, attribute) for item in value]
        if isinstance(value, Mapping):
            return {
                k: _booleans(v, attribute.sub(k)) if isinstance(k, str) else v
                for k, v in value.items()
            }
    return value


def _add_creating(
    kind: ResourceKind,
    operation: dict[str, Any],
    path: str,
    current: Mapping[str, Any],
    created: set[tuple[str, str, str]],
) -> dict[str, Any]:
    """An ``add`` on ``attr[sub eq "x"].leaf`` with no value matching yet, as an add of
    the value ``{sub: "x", leaf: value}`` to ``attr`` (see the module docstring)."""
    try:
        node = _parse_path(path)
    except Exception:
        return operation
    attr_path, condition = getattr(node, "attr_path", None), getattr(node, "val_filter", None)
    if attr_path is None or condition is None or getattr(attr_path, "uri", None) is not None:
        return operation
    field_path = getattr(condition, "attr_path", None)
    wanted = getattr(condition, "value", None)
    if (
        str(getattr(condition, "op", "")).lower().rsplit(".", 1)[-1] != "eq"
        or field_path is None
        or getattr(field_path, "sub_attr", None) is not None
        or not isinstance(wanted, str)
    ):
        return operation
    attribute = catalogue(kind.core).get(str(attr_path.attr).lower())
    field = attribute.sub(str(field_path.attr)) if attribute is not None else None
    leaf_name = getattr(node, "sub_attr", None)
    leaf = attribute.sub(leaf_name) if attribute is not None and leaf_name else None
    if (
        attribute is None
        or not attribute.multi_valued
        or not attribute.is_complex
        or field is None
        or (leaf_name is not None and leaf is None)
    ):
        return operation
    key = (attribute.name, field.name, wanted.lower())
    existing = _values(current, attribute.name)
    matches = any(
        isinstance(item, Mapping)
        and isinstance(_get(item, field.name), str)
        and str(_get(item, field.name)).lower() == wanted.lower()
        for item in existing
    )
    if matches or key in created:
        return operation
    value = operation.get("value")
    if leaf is not None:
        element: Any = {field.name: wanted, leaf.name: value}
    elif isinstance(value, Mapping):
        element = {**value, field.name: wanted}
    else:
        return operation
    created.add(key)
    return {"op": "add", "path": attribute.name, "value": [element]}


def _values(document: Mapping[str, Any], name: str) -> list[Any]:
    found = _get(document, name)
    return found if isinstance(found, list) else []


def _get(document: Mapping[str, Any], name: str) -> Any:
    lowered = name.lower()
    return next(
        (v for k, v in document.items() if isinstance(k, str) and k.lower() == lowered), None
    )


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
