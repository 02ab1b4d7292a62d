"""Page cursors: opaque, signed with the service key, and checked before any use; plain Python.

A cursor carries the list it was issued for, the sort, and the position (the last row's
sort value and id, or an event counter). It is signed with the service's secret key
(``itsdangerous``), so a client can pass it back but not build or alter one: anything
else is refused with :class:`InvalidCursorError` (HTTP 400 naming ``cursor``). The
position is then checked against the column it will be compared with (its type, its
length, its allowed values) as a second line, so that even a cursor signed by an older
version of the service never reaches the database as a value it cannot take.

The key is given once per process by :func:`configure` (the app factory does it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from itsdangerous import BadData, URLSafeSerializer

from tenants.errors import FieldProblem, InvalidInputError
from tenants.text import is_storable

#: The largest and smallest bigint.
BIGINT = (-(2**63), 2**63 - 1)


class InvalidCursorError(InvalidInputError):
    """The cursor was not issued by this service for this list and sort, or was altered."""

    code = "invalid_cursor"
    title = "Invalid cursor"

    def __init__(self, reason: str) -> None:
        super().__init__("the cursor is not valid", fields=[FieldProblem("cursor", reason)])


NOT_ISSUED = "it was not issued by this service or was altered"


class Kind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DATETIME = "datetime"
    DATE = "date"
    UUID = "uuid"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class Column:
    """What a position value must be to be compared with a column without a database error."""

    kind: Kind
    max_length: int | None = None
    choices: frozenset[str] = frozenset()
    low: int = BIGINT[0]
    high: int = BIGINT[1]


_serializer: URLSafeSerializer | None = None


def configure(secret_key: str) -> None:
    """Sign and check cursors with ``secret_key`` in this process."""
    global _serializer
    _serializer = URLSafeSerializer(secret_key, salt="tenantry.cursors")


def _signer() -> URLSafeSerializer:
    if _serializer is None:
        raise RuntimeError("cursors are not configured: call tenants.cursors.configure first")
    return _serializer


def seal(list_name: str, sort: str, position: Sequence[Any]) -> str:
    """A cursor continuing ``list_name`` sorted by ``sort`` after ``position``."""
    return str(_signer().dumps([list_name, sort, [_plain(v) for v in position]]))


def unseal(cursor: str, list_name: str, sort: str, columns: Sequence[Column]) -> list[Any]:
    """The position ``cursor`` continues after, one value per column, each of the column's
    type; InvalidCursorError when it was not issued for this list and sort or was altered."""
    try:
        payload = _signer().loads(cursor)
    except (BadData, ValueError, TypeError, RecursionError, OverflowError):
        # BadData: a bad signature or payload; the rest from decoding what claims to be ours.
        raise InvalidCursorError(NOT_ISSUED) from None
    if not (isinstance(payload, list) and len(payload) == 3):
        raise InvalidCursorError(NOT_ISSUED)
    made_for, made_sort, position = payload
    if made_for != list_name:
        raise InvalidCursorError("it was issued for another list")
    if made_sort != sort:
        raise InvalidCursorError(f"it was issued for sort={made_sort}, not sort={sort}")
    if not (isinstance(position, list) and len(position) == len(columns)):
        raise InvalidCursorError(NOT_ISSUED)
    return [value_for(position[index], column) for index, column in enumerate(columns)]


def _plain(value: Any) -> Any:
    """A position value as JSON: times and dates tagged so they come back as such."""
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def value_for(value: Any, column: Column) -> Any:
    """``value`` (as decoded from JSON) as a value of ``column``; InvalidCursorError if it
    cannot be one."""
    parsed = _parse(value, column)
    if parsed is None:
        raise InvalidCursorError(NOT_ISSUED)
    return parsed


def _parse(value: Any, column: Column) -> Any:
    """The column's value, or None when ``value`` cannot be one."""
    if column.kind is Kind.TEXT or column.kind is Kind.CHOICE:
        if not isinstance(value, str) or not is_storable(value):
            return None
        if column.max_length is not None and len(value) > column.max_length:
            return None
        if column.kind is Kind.CHOICE and value not in column.choices:
            return None
        return value
    if column.kind is Kind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value if column.low <= value <= column.high else None
    if column.kind is Kind.UUID:
        if not isinstance(value, str):
            return None
        try:
            return UUID(value)
        except ValueError:
            return None
    return _parse_time(value, column.kind)


def _parse_time(value: Any, kind: Kind) -> datetime | date | None:
    key = "t" if kind is Kind.DATETIME else "d"
    if not (isinstance(value, dict) and set(value) == {key} and isinstance(value[key], str)):
        return None
    try:
        if kind is Kind.DATE:
            return date.fromisoformat(value[key])
        moment = datetime.fromisoformat(value[key])
        if moment.tzinfo is None:
            return None
        # A time at the edge of the calendar cannot be shifted to UTC. (Not mutated: with no
        # argument, or None, it shifts to local time, which is UTC where the tests run.)
        moment.astimezone(UTC)  # pragma: no mutate
    except (ValueError, OverflowError):
        return None
    return moment

