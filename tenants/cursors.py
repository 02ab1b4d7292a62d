"""Page cursors: opaque, sealed with the service key, and checked before any use; plain Python.

A cursor carries the list it was issued for, the sort, and the position (the last row's
sort value and id, or an event counter). It is encrypted and authenticated (AES-GCM, a key
derived from the service's secret key): a client can pass it back but not read, build or
alter one. Reading matters because the position is the last row's sort value, an email
or a name, and cursors travel in URLs (browser history, proxies' logs). It is also bound
to the organisation it was issued in (its id is the cipher's associated data), so one
organisation's cursor is refused by another's lists. Anything else is refused with
:class:`InvalidCursorError` (HTTP 400 naming ``cursor``). The position is then checked
against the column it will be compared with (its type, its length, its allowed values) as
a second line, so that even a cursor sealed with a leaked key never reaches the database
as a value it cannot take.

The key, and how to find the organisation a cursor is issued in, are given once per
process by :func:`configure` (the app factory does it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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


NOT_ISSUED = "it was not issued by this service for this organisation, or was altered"


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


#: Where a cursor is issued: the open organisation's id, or "" outside any.
Scope = Callable[[], str]

_cipher: AESGCM | None = None
_nonce_key = b""
_scope: Scope = lambda: ""  # noqa: E731 -- replaced by configure
NONCE = 12
_ISSUED_ALPHABET = re.compile(r"[A-Za-z0-9_-]{1,8192}")


def configure(secret_key: str, scope: Scope | None = None) -> None:
    """Seal and open cursors with a key derived from ``secret_key`` in this process, each
    bound to what ``scope`` returns when it is sealed or opened (the organisation)."""
    global _cipher, _nonce_key, _scope
    _cipher = AESGCM(hashlib.sha256(b"tenantry.cursors\0" + secret_key.encode()).digest())
    _nonce_key = hashlib.sha256(b"tenantry.cursors.nonce\0" + secret_key.encode()).digest()
    _scope = scope or (lambda: "")


def _cipher_or_fail() -> AESGCM:
    if _cipher is None:
        raise RuntimeError("cursors are not configured: call tenants.cursors.configure first")
    return _cipher


def seal(list_name: str, sort: str, position: Sequence[Any]) -> str:
    """A cursor continuing ``list_name`` sorted by ``sort`` after ``position``."""
    payload = [list_name, sort, [_plain(v) for v in position]]
    return seal_bytes(json.dumps(payload, separators=(",", ":")).encode())


def seal_bytes(data: bytes) -> str:
    """``data`` sealed as a cursor of the current scope: URL-safe base64, unpadded, the same
    for the same data and scope. (Tests seal payloads ``seal`` would never make with it, as
    a leaked key could.)"""
    cipher, scope = _cipher_or_fail(), _scope().encode()
    # A synthetic nonce (a keyed hash of what is sealed, as SIV makes one): the same
    # position gives the same cursor, so a page's body is the same each time it is read,
    # and a nonce repeats only with its plaintext, which is all GCM needs.
    nonce = hmac.new(_nonce_key, scope + b"\0" + data, hashlib.sha256).digest()[:NONCE]
    sealed = cipher.encrypt(nonce, data, scope)
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def _opened(cursor: str) -> Any:
    """The JSON a cursor of the current scope holds; InvalidCursorError for anything else."""
    cipher = _cipher_or_fail()
    if not _ISSUED_ALPHABET.fullmatch(cursor):  # unpadded URL-safe base64, as issued
        raise InvalidCursorError(NOT_ISSUED)
    try:
        raw = base64.b64decode(
            (cursor + "=" * (-len(cursor) % 4)).encode("ascii"), altchars=b"-_", validate=True
        )
        data = cipher.decrypt(raw[:NONCE], raw[NONCE:], _scope().encode())
        return json.loads(data)
    except (InvalidTag, binascii.Error, ValueError, TypeError, RecursionError, OverflowError):
        # InvalidTag: altered, another key or another organisation's; the rest from
        # decoding what is not a cursor at all (or sealed JSON a leaked key could make).
        raise InvalidCursorError(NOT_ISSUED) from None


def unseal(cursor: str, list_name: str, sort: str, columns: Sequence[Column]) -> list[Any]:
    """The position ``cursor`` continues after, one value per column, each of the column's
    type; InvalidCursorError when it was not issued for this list and sort (in this
    organisation) or was altered."""
    payload = _opened(cursor)
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
