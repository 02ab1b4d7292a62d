"""Resource bodies of POST and PUT checked against the published schemas; plain Python.

The same schema documents ``/Schemas`` serves (``tenants.scim.schemas``) drive the check,
so a body passes exactly when it fits what the service announces: attribute names match
case-insensitively (RFC 7643 §2.1) and come out as the schema spells them, each value
must have its attribute's type, single- and multi-valuedness, a multi-valued attribute
has at most one ``primary`` value (RFC 7643 §2.4), and an attribute no schema declares
is refused (``invalidSyntax``). Read-only attributes (``id``, ``meta``, ``groups``) are
ignored as RFC 7644 §3.3 asks, and so is ``password``, which Tenantry never keeps.

This walk costs a few microseconds per User, a twentieth of building the ``scim2-models``
resource (measured ~24 µs without and ~113 µs with the request context); bulk
provisioning of thousands of Users runs it for each (``bench/scim.py``). PATCH still
applies its operations with ``scim2-models`` (``PatchOp.patch``) and then passes its
result through here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tenants import text as text_policy
from tenants.scim.dialects import boolean_text
from tenants.scim.errors import InvalidSyntaxError, InvalidValueError
from tenants.scim.schemas import Attribute, ResourceKind, catalogue

#: Most arrays and objects a request body may nest, the body itself included. The deepest
#: SCIM message is a PATCH inside a Bulk operation reaching a complex value (~10 levels);
#: the same bound as scim2-models puts on a filter's or path's nesting.
MAX_DEPTH = 32
#: Ignored when sent (RFC 7644 §3.3), by lower-cased name.
IGNORED = frozenset({"id", "meta", "groups", "password"})
#: Kept as sent (checked), beside the schema's attributes.
_COMMON = {"externalid": "externalId", "schemas": "schemas"}


def validate(kind: ResourceKind, payload: Any) -> dict[str, Any]:
    """The body as a canonical resource document (schema spellings, unassigned values
    dropped); InvalidSyntaxError or InvalidValueError naming the first problem."""
    if not isinstance(payload, Mapping):
        raise InvalidSyntaxError(f"the body must be a {kind.name} resource (a JSON object)")
    core, extensions, known = _plan(kind)
    out: dict[str, Any] = {"schemas": _schemas(kind, payload, known)}
    for key, value in payload.items():
        if not isinstance(key, str):
            raise InvalidSyntaxError("attribute names must be strings")
        if value is None:
            continue
        lowered = key.lower()
        attribute = core.get(lowered)
        if attribute is not None:
            checked = _value(value, attribute, attribute.name)
            if checked is not None:
                out[attribute.name] = checked
        elif lowered in IGNORED or lowered == "schemas":
            continue
        elif lowered == "externalid":
            if not isinstance(value, str):
                raise InvalidValueError("externalId must be a string")
            out["externalId"] = _text(value, "externalId")
        elif lowered in extensions:
            urn = extensions[lowered]
            extension = _object(value, urn, catalogue(urn), urn)
            if extension:
                out.setdefault(urn, {}).update(extension)
        else:
            _qualified(kind, key, value, out, extensions)
    return out


def _text(value: str, where: str, *, free: bool = False) -> str:
    """``value`` under the service's one text policy (``tenants.text``): NFC, no control or
    bidirectional control characters; a formatted address may keep its line breaks."""
    try:
        return text_policy.clean(value, free=free)
    except text_policy.TextError as exc:
        raise InvalidValueError(f"{where} {exc}") from None


def _multiline(where: str) -> bool:
    """Only a postal address's ``formatted`` is free text (it keeps its line breaks); a
    name's ``formatted`` is a name like any other, shown wherever the member is."""
    return re.sub(r"\[[^\]]*\]", "", where).lower().endswith("addresses.formatted")


def check_body(payload: Any) -> None:
    """Run on every decoded body before it is read for its meaning, in one walk that does
    not recurse itself:

    - InvalidSyntaxError when arrays and objects nest deeper than MAX_DEPTH: what reads a
      body afterwards (bulkId substitution, the dialects, scim2-models and pydantic) walks
      it recursively, and deeper input would end in a RecursionError, not an answer;
    - InvalidValueError when any key or string holds a lone UTF-16 surrogate (a
      ``\\ud800`` escape JSON lets through) or a NUL, neither of which is text PostgreSQL
      can hold.
    """
    stack: list[tuple[Any, str, int]] = [(payload, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            if not text_policy.is_storable(value):
                reason = text_policy.problem(value) or "is not text"
                raise InvalidValueError(f"{where or 'the body'} {reason}")
            continue
        if isinstance(value, dict | list) and depth == MAX_DEPTH:
            raise too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{where}.{key}" if where else str(key)
                if not text_policy.is_storable(key):
                    raise InvalidValueError(f"an attribute name {text_policy.problem(key)}")
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))


def too_deep() -> InvalidSyntaxError:
    """The refusal of a body nested deeper than MAX_DEPTH (also for one too deep for
    Python's JSON parser to read at all)."""
    return InvalidSyntaxError(f"the body nests arrays or objects deeper than {MAX_DEPTH} levels")


def _qualified(
    kind: ResourceKind, key: str, value: Any, out: dict[str, Any], extensions: Mapping[str, str]
) -> None:
    """An attribute named with its schema URN (``urn:…:User:department``)."""
    lowered = key.lower()
    urn = next((urn for low, urn in extensions.items() if lowered.startswith(low + ":")), None)
    if urn is None and lowered.startswith(kind.core.lower() + ":"):
        attribute = catalogue(kind.core).get(lowered[len(kind.core) + 1 :])
        if attribute is not None:
            checked = _value(value, attribute, attribute.name)
            if checked is not None:
                out[attribute.name] = checked
            return
    if urn is None:
        raise InvalidSyntaxError(f"{kind.name} resources have no attribute {key!r}")
    name = key[len(urn) + 1 :]
    attribute = catalogue(urn).get(name.lower())
    if attribute is None:
        raise InvalidSyntaxError(f"{urn} has no attribute {name!r}")
    checked = _value(value, attribute, f"{urn}:{name}")
    if checked is not None:
        out.setdefault(urn, {})[attribute.name] = checked


@functools.cache
def _plan(kind: ResourceKind) -> tuple[dict[str, Attribute], dict[str, str], dict[str, str]]:
    """The kind's core attributes, extensions and schema URNs by lower-cased name."""
    return (
        catalogue(kind.core),
        {urn.lower(): urn for urn in kind.extensions},
        {urn.lower(): urn for urn in kind.schemas},
    )


def _schemas(kind: ResourceKind, payload: Mapping[str, Any], known: Mapping[str, str]) -> list[str]:
    given = payload.get("schemas")
    if given is None:
        given = next(
            (v for k, v in payload.items() if isinstance(k, str) and k.lower() == "schemas"), None
        )
    if given is None:
        return [kind.core]
    if not isinstance(given, list) or not all(isinstance(s, str) for s in given):
        raise InvalidSyntaxError("schemas must be a list of schema URNs")
    lowered = [s.lower() for s in given]
    if kind.core.lower() not in lowered:
        raise InvalidSyntaxError(f"schemas must include {kind.core}")
    unknown = [s for s, low in zip(given, lowered, strict=True) if low not in known]
    if unknown:
        raise InvalidSyntaxError(f"{unknown[0]} is not a schema of {kind.name} resources")
    return [known[low] for low in lowered]


def _object(
    value: Any, where: str, attributes: Mapping[str, Attribute], urn: str
) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidValueError(f"{where} must be an object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        attribute = attributes.get(str(key).lower())
        if attribute is None:
            raise InvalidSyntaxError(f"{urn} has no attribute {key!r}")
        checked = _value(item, attribute, f"{where}:{attribute.name}")
        if checked is not None:
            out[attribute.name] = checked
    return out


def _value(value: Any, attribute: Attribute, where: str) -> Any:
    """``value`` checked against ``attribute``; None when it is unassigned."""
    if value is None:
        return None
    if attribute.mutability == "readOnly":
        return None
    if attribute.multi_valued:
        if not isinstance(value, list):
            raise InvalidValueError(f"{where} must be a list")
        items = [_single(item, attribute, where) for item in value]
        items = [item for item in items if item not in (None, {})]
        if sum(1 for item in items if isinstance(item, dict) and item.get("primary") is True) > 1:
            raise InvalidValueError(f"{where} has more than one primary value (RFC 7643 §2.4)")
        return items or None
    return _single(value, attribute, where)


def _single(value: Any, attribute: Attribute, where: str) -> Any:
    if value is None:
        return None
    kind = attribute.type
    if kind == "complex":
        if not isinstance(value, Mapping):
            raise InvalidValueError(f"{where} must be an object")
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = attribute.sub(str(key))
            if sub is None:
                raise InvalidSyntaxError(f"{where} has no sub-attribute {key!r}")
            checked = (
                _single(item, sub, f"{where}.{sub.name}") if sub.mutability != "readOnly" else None
            )
            if checked is not None:
                out[sub.name] = checked
        return out or None
    if kind in ("string", "reference"):
        if not isinstance(value, str):
            raise InvalidValueError(f"{where} must be a string")
        return _text(value, where, free=_multiline(where)) or None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        # Entra ID sends "True"/"False" (tenants.scim.dialects); nothing looser.
        text = boolean_text(value)
        if text is None:
            raise InvalidValueError(f"{where} must be true or false")
        return text
    if kind == "binary":
        if not isinstance(value, str):
            raise InvalidValueError(f"{where} must be base64 text")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidValueError(f"{where} is not valid base64") from None
        return value
    if kind == "dateTime":
        if not isinstance(value, str):
            raise InvalidValueError(f"{where} must be a dateTime string")
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InvalidValueError(f"{where} is not a dateTime") from None
        return value
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValueError(f"{where} must be an integer")
        return value
    if kind == "decimal":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidValueError(f"{where} must be a number")
        return value
    raise InvalidValueError(f"{where} has a type this service does not take")
