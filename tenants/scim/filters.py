"""SCIM filters (RFC 7644 §3.4.2.2) translated to SQL; plain Python, no I/O.

``scim2-models`` parses the filter (``ScimFilter(text).ast``); this module walks the tree
and writes one SQL boolean expression with bound parameters. Every attribute path is
resolved against the published schemas (``tenants.scim.schemas.resolve``) and then
against the resource kind's column map (``Columns``), so an attribute that is unknown,
or known but not stored anywhere filterable, is refused with ``invalidFilter``; nothing
is ever dropped from a filter (dropping a term would widen the result).

Semantics, the same as ``scim2-models``' reference evaluator (``ScimFilter.match``):

- strings compare case-insensitively unless the attribute is ``caseExact``; ``gt``/``lt``
  and friends compare code points (``COLLATE "C"``), not the database's locale;
- an absent attribute matches nothing, except ``ne`` (absent is not equal to a value)
  and ``eq null``;
- on a multi-valued attribute a comparison matches when any value matches, except ``ne``,
  which holds when no value equals the operand; a comparison with no sub-attribute
  compares the ``value`` sub-attribute;
- ``pr`` holds for a non-empty string, any boolean or time, and a complex or
  multi-valued attribute with at least one present sub-attribute;
- ``attr[filter]`` holds when one value of ``attr`` satisfies the inner filter.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from scim2_models import ScimFilter
from scim2_models.exceptions import SCIMException
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

from tenants.scim.errors import InvalidFilterError
from tenants.scim.schemas import Attribute, Binding, ResourceKind, resolve
from tenants.text import is_storable

#: Longest filter accepted; a longer one is refused before it is parsed.
MAX_FILTER_LENGTH = 4000
#: Most comparisons and presence tests in one filter.
MAX_TERMS = 100

TEXT_TYPES = frozenset({"string", "reference", "binary"})
ORDERING = frozenset(
    {CompareOperator.gt, CompareOperator.ge, CompareOperator.lt, CompareOperator.le}
)
SUBSTRING = frozenset({CompareOperator.co, CompareOperator.sw, CompareOperator.ew})


@dataclass(frozen=True, slots=True)
class Scalar:
    """A singular value as an SQL expression of type ``text``, ``bool`` or ``time``
    (timestamptz); NULL when absent."""

    sql: str
    type: str


@dataclass(frozen=True, slots=True)
class Composite:
    """A singular complex attribute: its sub-attributes' expressions by lower-cased name."""

    subs: Mapping[str, Scalar]


@dataclass(frozen=True, slots=True)
class Elements:
    """A multi-valued attribute: ``source(alias)`` is a FROM item yielding one row per value,
    ``subs(alias)`` the expressions of its sub-attributes over that row."""

    source: Callable[[str], str]
    subs: Callable[[str], Mapping[str, Scalar]]


Column = Scalar | Composite | Elements


class Columns(Protocol):
    """Where a resource kind keeps each attribute; InvalidFilterError for attributes it
    does not keep in a filterable form."""

    kind: ResourceKind

    def column(self, binding: Binding) -> Column: ...


class Params:
    """Positional parameters of one statement: ``$1`` … in the order they are bound."""

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def parse(text: str) -> FilterNode:
    """The syntax tree of ``text``; InvalidFilterError when it is not a filter."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilterError(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise InvalidFilterError("the filter is empty")
    try:
        return ScimFilter(text).ast
    except SCIMException as exc:
        raise InvalidFilterError(f"the filter is not valid: {exc.detail}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidFilterError(f"the filter is not valid: {exc}") from None


def compile_filter(text: str, columns: Columns, params: Params) -> str:
    """The SQL boolean expression for the filter ``text``, its values bound in ``params``.

    Raises InvalidFilterError for a syntax error, an unknown or unfilterable attribute,
    an operator the attribute's type does not take (``gt`` on a boolean, ``co`` on a
    time) or a value of the wrong type.
    """
    return _Compiler(columns, params).visit(parse(text))


def value_column(column: Column) -> Scalar:
    """The value to sort by or compare for a column: a multi-valued attribute's primary
    value, or its first (RFC 7644 §3.4.2.3)."""
    if isinstance(column, Scalar):
        return column
    if isinstance(column, Composite):
        raise InvalidFilterError("a complex attribute has no single value to sort by")
    subs = column.subs("o")
    value = subs.get("value")
    if value is None:
        raise InvalidFilterError("this attribute has no value to sort by")
    primary = subs.get("primary")
    order = f"ORDER BY {primary.sql} IS TRUE DESC" if primary else ""
    return Scalar(f"(SELECT {value.sql} FROM {column.source('o')} {order} LIMIT 1)", value.type)  # noqa: S608


def sort_expression(column: Scalar, case_exact: bool) -> str:
    """An ORDER BY expression in code-point order, case-folded unless ``case_exact``."""
    if column.type != "text":
        return column.sql
    folded = column.sql if case_exact else f"lower({column.sql})"
    return f'{folded} COLLATE "C"'


class _Compiler:
    def __init__(self, columns: Columns, params: Params) -> None:
        self.columns = columns
        self.params = params
        self.terms = 0
        self.aliases: Iterator[int] = itertools.count(1)

    # --- the tree ---------------------------------------------------------------------

    def visit(self, node: FilterNode) -> str:
        if isinstance(node, LogicalExpr):
            joiner = " AND " if node.op == LogicalOperator.and_ else " OR "
            return "(" + joiner.join(self.visit(term) for term in node.terms) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.visit(node.expr)})"
        if isinstance(node, Comparison | Present):
            self._count()
            binding = self._resolve(node.attr_path)
            return self._leaf(node, binding, self.columns.column(binding))
        if isinstance(node, ValuePath):
            return self._value_path(node)
        raise InvalidFilterError(f"unexpected filter expression {node}")

    def _count(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise InvalidFilterError(f"the filter has more than {MAX_TERMS} terms")

    def _resolve(self, path: AttrPath) -> Binding:
        return resolve(self.columns.kind, path.attr, path.sub_attr, path.uri)

    def _value_path(self, node: ValuePath) -> str:
        if node.sub_attr is not None:
            raise InvalidFilterError("a value filter cannot be followed by a sub-attribute here")
        binding = self._resolve(node.attr_path)
        column = self.columns.column(binding)
        if not isinstance(column, Elements) or binding.sub is not None:
            raise InvalidFilterError(
                f"{binding} is not a multi-valued attribute: it has no values to select"
            )
        alias = f"e{next(self.aliases)}"
        inner = _ElementCompiler(self, binding.attribute, column.subs(alias)).visit(node.val_filter)
        return f"EXISTS (SELECT 1 FROM {column.source(alias)} WHERE {inner})"  # noqa: S608

    # --- one comparison or presence test ----------------------------------------------------

    def _leaf(self, node: Comparison | Present, binding: Binding, column: Column) -> str:
        if isinstance(column, Elements):
            return self._over_elements(node, binding, column)
        if isinstance(column, Composite):
            if isinstance(node, Present):
                return "(" + " OR ".join(_present(s) for s in column.subs.values()) + ")"
            raise InvalidFilterError(f"{binding} is complex: compare one of its sub-attributes")
        if isinstance(node, Present):
            return _present(column)
        return self._compare(node, binding.leaf, column)

    def _over_elements(self, node: Comparison | Present, binding: Binding, column: Elements) -> str:
        alias = f"e{next(self.aliases)}"
        subs = column.subs(alias)
        source = column.source(alias)
        if isinstance(node, Present):
            if binding.sub is not None:
                test = _present(self._sub(subs, binding.sub.name))
            else:
                test = "(" + " OR ".join(_present(s) for s in subs.values()) + ")"
            return f"EXISTS (SELECT 1 FROM {source} WHERE {test})"  # noqa: S608
        leaf = binding.sub or binding.attribute.sub("value")
        if leaf is None:
            raise InvalidFilterError(f"{binding} has no value to compare: name a sub-attribute")
        scalar = self._sub(subs, leaf.name)
        if node.op == CompareOperator.ne:
            equal = Comparison(node.attr_path, CompareOperator.eq, node.value)
            return f"NOT EXISTS (SELECT 1 FROM {source} WHERE {self._compare(equal, leaf, scalar)})"  # noqa: S608
        return f"EXISTS (SELECT 1 FROM {source} WHERE {self._compare(node, leaf, scalar)})"  # noqa: S608

    @staticmethod
    def _sub(subs: Mapping[str, Scalar], name: str) -> Scalar:
        found = subs.get(name.lower())
        if found is None:
            raise InvalidFilterError(f"the sub-attribute {name} cannot be filtered on")
        return found

    def _compare(self, node: Comparison, attribute: Attribute, column: Scalar) -> str:
        """A two-valued comparison: an absent value makes it false, never NULL (which
        ``not (...)`` would keep NULL and so wrongly exclude)."""
        sql = self._compare_sql(node, attribute, column)
        return f"COALESCE({sql}, false)"

    def _compare_sql(self, node: Comparison, attribute: Attribute, column: Scalar) -> str:
        op, value = node.op, node.value
        if value is None:
            if op == CompareOperator.eq:
                return f"({column.sql} IS NULL)"
            if op == CompareOperator.ne:
                return f"({column.sql} IS NOT NULL)"
            raise InvalidFilterError(f"{op.value} cannot compare with null")
        if op == CompareOperator.ne:
            equal = Comparison(node.attr_path, CompareOperator.eq, value)
            return f"(NOT {self._compare(equal, attribute, column)})"
        if column.type == "text":
            return self._compare_text(op, value, attribute, column)
        if column.type == "bool":
            if op != CompareOperator.eq or not isinstance(value, bool):
                raise InvalidFilterError(
                    f"{attribute.name} is a boolean: compare it with eq or ne and true or false"
                )
            return f"({column.sql} = {self.params.bind(value)})"
        if column.type == "time":
            if op in SUBSTRING:
                raise InvalidFilterError(f"{op.value} does not apply to the time {attribute.name}")
            return f"({column.sql} {_SQL_OPS[op]} {self.params.bind(_as_time(value))})"
        raise InvalidFilterError(f"{attribute.name} cannot be compared")

    def _compare_text(
        self, op: CompareOperator, value: Any, attribute: Attribute, column: Scalar
    ) -> str:
        if not isinstance(value, str) or isinstance(value, bool):
            raise InvalidFilterError(f"{attribute.name} is a string: compare it with a string")
        if not is_storable(value):
            raise InvalidFilterError(
                "a filter value cannot contain a NUL character or a lone UTF-16 surrogate"
            )
        if attribute.type == "binary" and op not in (CompareOperator.eq,):
            raise InvalidFilterError(f"{op.value} does not apply to the binary {attribute.name}")
        # Stored text is NFC (``tenants.text``): the operand is too, or an identity provider
        # that looks up a decomposed "é" finds nothing and then gets 409 creating it.
        left, right = column.sql, self.params.bind(unicodedata.normalize("NFC", value))
        if not attribute.case_exact:
            left, right = f"lower({left})", f"lower({right})"
        if op == CompareOperator.eq:
            return f"({left} = {right})"
        if op == CompareOperator.co:
            return f"(strpos({left}, {right}) > 0)"
        if op == CompareOperator.sw:
            return f"starts_with({left}, {right})"
        if op == CompareOperator.ew:
            return f"(right({left}, char_length({right})) = {right})"
        return f'({left} COLLATE "C" {_SQL_OPS[op]} {right} COLLATE "C")'


class _ElementCompiler:
    """The filter inside ``attr[...]``: its attribute paths name sub-attributes of ``attr``."""

    def __init__(self, outer: _Compiler, attribute: Attribute, subs: Mapping[str, Scalar]) -> None:
        self.outer = outer
        self.attribute = attribute
        self.subs = subs

    def visit(self, node: FilterNode) -> str:
        if isinstance(node, LogicalExpr):
            joiner = " AND " if node.op == LogicalOperator.and_ else " OR "
            return "(" + joiner.join(self.visit(term) for term in node.terms) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.visit(node.expr)})"
        if isinstance(node, Comparison | Present):
            self.outer._count()
            path = node.attr_path
            if path.uri is not None or path.sub_attr is not None:
                raise InvalidFilterError(
                    f"inside {self.attribute.name}[...] name its sub-attributes alone, not {path}"
                )
            sub = self.attribute.sub(path.attr)
            if sub is None:
                raise InvalidFilterError(
                    f"the attribute {self.attribute.name} has no sub-attribute {path.attr!r}"
                )
            column = self.outer._sub(self.subs, sub.name)
            if isinstance(node, Present):
                return _present(column)
            return self.outer._compare(node, sub, column)
        raise InvalidFilterError("a value filter cannot contain another value filter")


_SQL_OPS: dict[CompareOperator, str] = {
    CompareOperator.eq: "=",
    CompareOperator.gt: ">",
    CompareOperator.ge: ">=",
    CompareOperator.lt: "<",
    CompareOperator.le: "<=",
}


def _present(column: Scalar) -> str:
    if column.type == "text":
        return f"({column.sql} IS NOT NULL AND {column.sql} <> '')"
    return f"({column.sql} IS NOT NULL)"


def _as_time(value: Any) -> datetime:
    """A filter's dateTime operand (RFC 7643 §2.3.5: xsd:dateTime, as a JSON string) in
    UTC, without an offset read as UTC. InvalidFilterError when it is no dateTime, or one
    at the edge of the calendar that falls outside years 1 to 9999 once in UTC (as
    ``0001-01-01T00:00:00+14:00`` does), which PostgreSQL's driver cannot take either."""
    if not isinstance(value, str):
        raise InvalidFilterError("compare a time with a dateTime string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFilterError(f"{value!r} is not a dateTime") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidFilterError(f"{value!r} is out of range once converted to UTC") from None


# --- expressions over stored SCIM JSON (shared by the resource kinds' column maps) ---------


def json_scalar(json_sql: str, attribute: Attribute) -> Scalar:
    """The value of a JSON node holding ``attribute``, typed for comparison: text for
    strings, references and binaries; boolean only when the JSON holds one (anything else
    reads as absent). The published schemas keep no other type in JSON."""
    if attribute.type in TEXT_TYPES:
        return Scalar(f"({json_sql} #>> '{{}}')", "text")
    if attribute.type == "boolean":
        return Scalar(
            f"(CASE WHEN jsonb_typeof({json_sql}) = 'boolean' THEN ({json_sql})::text::boolean END)",
            "bool",
        )
    raise InvalidFilterError(f"{attribute.name} cannot be filtered on")


def json_column(doc_sql: str, attribute: Attribute) -> Column:
    """The column of ``attribute`` inside the JSON object ``doc_sql``, by its schema: a
    scalar, a complex object or an array of values."""
    node = f"({doc_sql} -> {_literal(attribute.name)})"
    if attribute.multi_valued:
        subs_of = _json_subs(attribute)
        return Elements(
            source=lambda alias: (
                f"jsonb_array_elements(CASE WHEN jsonb_typeof({node}) = 'array' "
                f"THEN {node} ELSE '[]'::jsonb END) AS {alias}(v)"
            ),
            subs=lambda alias: subs_of(f"{alias}.v"),
        )
    if attribute.is_complex:
        return Composite(_json_subs(attribute)(node))
    return json_scalar(node, attribute)


def _json_subs(attribute: Attribute) -> Callable[[str], dict[str, Scalar]]:
    def subs(json_sql: str) -> dict[str, Scalar]:
        if not attribute.is_complex:
            # A multi-valued attribute of plain values: "value" is the value itself.
            return {"value": json_scalar(json_sql, attribute)}
        return {
            key: json_scalar(f"({json_sql} -> {_literal(sub.name)})", sub)
            for key, sub in attribute.sub_attributes.items()
        }

    return subs


def _literal(name: str) -> str:
    """An attribute name as an SQL string literal (names come from the published schemas,
    never from the request, but quote them properly all the same)."""
    return "'" + name.replace("'", "''") + "'"
