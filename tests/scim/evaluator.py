"""A reference evaluation of SCIM filters over User documents as the service returns them.

Written for the tests, independently of the SQL translation it checks
(``tenants/scim/filters.py``): it walks the parsed filter over plain JSON. Semantics, as
RFC 7644 §3.4.2.2 and scim2-models' evaluator have them: strings compare
case-insensitively unless the attribute is case-exact, ordering compares code points, an
absent value matches only ``ne``, a multi-valued attribute matches when any value does
(``ne``: when none equals), ``pr`` needs a non-empty value.
"""

from __future__ import annotations

from typing import Any

from scim2_models import ScimFilter
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CASE_EXACT = {
    "id",
    "externalid",
    "profileurl",
    "photos.value",
    "x509certificates.value",
    "manager.value",
    "groups.value",
    "groups.$ref",
}


def matches(text: str, doc: dict[str, Any]) -> bool:
    return _eval(ScimFilter(text).ast, doc)


def _lookup(doc: dict[str, Any], key: str) -> Any:
    for k, v in doc.items():
        if k.lower() == key.lower():
            return v
    return None


def _node(path: AttrPath, doc: dict[str, Any]) -> tuple[Any, str | None, str]:
    """(value of the attribute, sub-attribute name, case key)."""
    scope = doc
    if path.uri is not None and path.uri.lower() == ENTERPRISE.lower():
        scope = _lookup(doc, ENTERPRISE) or {}
    value = _lookup(scope, path.attr)
    key = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
    return value, path.sub_attr, key


def _fold(value: Any, key: str) -> Any:
    return value if key in CASE_EXACT or not isinstance(value, str) else value.lower()


def _compare(actual: Any, op: CompareOperator, expected: Any, key: str) -> bool:
    if expected is None:
        return (actual is None) if op == CompareOperator.eq else (actual is not None)
    if op == CompareOperator.ne:
        return not _compare(actual, CompareOperator.eq, expected, key)
    if actual is None or type(actual) is not type(expected):
        return False
    left, right = _fold(actual, key), _fold(expected, key)
    if op == CompareOperator.eq:
        return bool(left == right)
    if op == CompareOperator.co:
        return right in left
    if op == CompareOperator.sw:
        return bool(left.startswith(right))
    if op == CompareOperator.ew:
        return bool(left.endswith(right))
    if op == CompareOperator.gt:
        return bool(left > right)
    if op == CompareOperator.ge:
        return bool(left >= right)
    if op == CompareOperator.lt:
        return bool(left < right)
    return bool(left <= right)


def _present(value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    if isinstance(value, dict):
        return any(_present(v) for v in value.values())
    if isinstance(value, list):
        return any(_present(v) for v in value)
    return True


def _eval(node: FilterNode, doc: dict[str, Any]) -> bool:
    if isinstance(node, LogicalExpr):
        results = [_eval(term, doc) for term in node.terms]
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not _eval(node.expr, doc)
    if isinstance(node, ValuePath):
        values, _, _ = _node(node.attr_path, doc)
        return any(_eval(node.val_filter, item) for item in values or [] if isinstance(item, dict))
    if isinstance(node, Present):
        value, sub, _ = _node(node.attr_path, doc)
        if sub is None:
            return _present(value)
        items = value if isinstance(value, list) else [value]
        return any(_present(_lookup(item, sub)) for item in items if isinstance(item, dict))
    assert isinstance(node, Comparison)
    value, sub, key = _node(node.attr_path, doc)
    if isinstance(value, list):
        sub = sub or "value"
        key = key if "." in key else f"{key}.value"
        found = [_lookup(item, sub) for item in value if isinstance(item, dict)]
        if node.op == CompareOperator.ne:
            return not any(_compare(v, CompareOperator.eq, node.value, key) for v in found)
        return any(_compare(v, node.op, node.value, key) for v in found)
    if sub is not None:
        value = _lookup(value, sub) if isinstance(value, dict) else None
    return _compare(value, node.op, node.value, key)
