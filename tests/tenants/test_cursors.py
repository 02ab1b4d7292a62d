"""Page cursors (tenants.cursors): signed, bound to their list and sort, checked by column.

The properties feed the parser any text a client could send, and any JSON a cursor could
carry even when correctly signed: the answer is a position of the column's type or an
InvalidCursorError naming ``cursor``, never another exception.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants import cursors
from tenants.cursors import BIGINT, Column, InvalidCursorError, Kind

KEY = "cursor-test-key-" + "k" * 32
STATUS = Column(Kind.CHOICE, choices=frozenset({"active", "departed"}))
EMAIL = Column(Kind.TEXT, max_length=20)
ID = Column(Kind.UUID)
COUNTER = Column(Kind.INTEGER, low=1, high=100)
COLUMNS = [STATUS, EMAIL, ID, COUNTER, Column(Kind.DATETIME), Column(Kind.DATE)]


@pytest.fixture(autouse=True)
def signed_with_a_test_key() -> None:
    cursors.configure(KEY)


def forged(payload: Any) -> str:
    """A cursor carrying ``payload``, sealed with the service's key (as a leaked key could):
    only the column checks stand in its way."""
    return cursors.seal_bytes(json.dumps(payload).encode())


def reason(error: pytest.ExceptionInfo[InvalidCursorError]) -> str:
    [problem] = error.value.fields
    assert problem.field == "cursor"
    return problem.reason


def test_a_cursor_gives_back_the_position_it_was_issued_for() -> None:
    at = datetime(2026, 12, 5, 3, 40, tzinfo=UTC)
    row = uuid.uuid4()
    position = ["active", "a@b.example", row, 7, at, date(2026, 1, 2)]
    cursor = cursors.seal("members", "-status", position)
    assert cursors.unseal(cursor, "members", "-status", COLUMNS) == position


def test_a_cursor_of_another_list_or_sort_is_refused_saying_which() -> None:
    cursor = cursors.seal("members", "email", ["a@b.example"])
    with pytest.raises(InvalidCursorError) as other_list:
        cursors.unseal(cursor, "groups", "email", [EMAIL])
    assert other_list.value.message == "the cursor is not valid"
    assert reason(other_list) == "it was issued for another list"
    with pytest.raises(InvalidCursorError) as other_sort:
        cursors.unseal(cursor, "members", "-email", [EMAIL])
    assert "sort=email, not sort=-email" in reason(other_sort)


def test_a_cursor_shows_nothing_of_its_position_and_is_the_same_for_the_same_one() -> None:
    position = ["ada.lovelace@acme.example", "Ada Lovelace"]
    cursor = cursors.seal("members", "email", position)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for shown in (cursor.encode(), raw, base64.b64decode(cursor + "==", altchars=b"-_")):
        assert b"ada" not in shown.lower() and b"members" not in shown
    assert cursors.seal("members", "email", position) == cursor
    assert cursors.seal("members", "email", [position[0] + "x", position[1]]) != cursor
    assert cursors.seal("members", "-email", position) != cursor


def test_a_cursor_issued_in_one_organisation_is_refused_in_another() -> None:
    scope = ["org-a"]
    cursors.configure(KEY, scope=lambda: scope[0])
    cursor = cursors.seal("members", "email", ["a@b.example"])
    assert cursors.unseal(cursor, "members", "email", [EMAIL]) == ["a@b.example"]
    scope[0] = "org-b"
    with pytest.raises(InvalidCursorError) as refused:
        cursors.unseal(cursor, "members", "email", [EMAIL])
    assert reason(refused) == cursors.NOT_ISSUED


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    cursor = cursors.seal("members", "email", ["a@b.example"])
    cursors.configure("another-key-" + "x" * 40)
    with pytest.raises(InvalidCursorError) as refused:
        cursors.unseal(cursor, "members", "email", [EMAIL])
    assert reason(refused) == cursors.NOT_ISSUED


def test_an_altered_cursor_is_refused() -> None:
    cursor = cursors.seal("members", "email", ["a@b.example"])
    flipped = cursor[:20] + ("B" if cursor[20] == "A" else "A") + cursor[21:]
    for altered in (cursor[:-1], cursor[:-4], flipped, cursor + "A", cursor[16:], "", "=" * 8):
        with pytest.raises(InvalidCursorError):
            cursors.unseal(altered, "members", "email", [EMAIL])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (STATUS, "zombie"),
        (STATUS, 1),
        (EMAIL, "x" * 21),
        (EMAIL, "a\x00b"),
        (EMAIL, 12345),
        (EMAIL, None),
        (ID, 12345),
        (ID, "not-a-uuid"),
        (COUNTER, 0),
        (COUNTER, 101),
        (COUNTER, True),
        (COUNTER, "5"),
        (COUNTER, 5.0),
        (Column(Kind.DATETIME), {"t": "2020-01-01T00:00:00"}),
        (Column(Kind.DATETIME), {"t": "0001-01-01T00:00:00+01:00"}),
        (Column(Kind.DATETIME), {"t": "soon"}),
        (Column(Kind.DATETIME), "2020-01-01T00:00:00+00:00"),
        (Column(Kind.DATETIME), {"t": "2020-01-01T00:00:00+00:00", "x": 1}),
        (Column(Kind.DATETIME), {"d": "2020-01-01"}),
        (Column(Kind.DATE), {"t": "2020-01-01T00:00:00+00:00"}),
        (Column(Kind.DATE), {"d": "2020-13-01"}),
        (Column(Kind.DATE), {"d": 20200101}),
    ],
)
def test_a_signed_position_that_cannot_be_the_columns_value_is_refused(
    column: Column, value: Any
) -> None:
    with pytest.raises(InvalidCursorError) as refused:
        cursors.unseal(forged(["l", "s", [value]]), "l", "s", [column])
    assert reason(refused) == cursors.NOT_ISSUED


def test_a_lone_surrogate_in_a_signed_position_is_refused() -> None:
    payload = json.dumps(["l", "s", ["\ud800"]])  # ASCII JSON: the surrogate as an escape
    crafted = cursors.seal_bytes(payload.encode())
    with pytest.raises(InvalidCursorError):
        cursors.unseal(crafted, "l", "s", [EMAIL])


def test_positions_at_the_limits_of_their_column_are_taken() -> None:
    edge = [
        (EMAIL, "x" * 20),
        (COUNTER, 1),
        (COUNTER, 100),
        (Column(Kind.INTEGER), BIGINT[1]),
        (Column(Kind.INTEGER), BIGINT[0]),
        (Column(Kind.TEXT), "y" * 5000),
    ]
    for column, value in edge:
        assert cursors.unseal(forged(["l", "s", [value]]), "l", "s", [column]) == [value]


def test_a_position_of_the_wrong_length_is_refused() -> None:
    for position in ([], ["a@b", "c@d"]):
        with pytest.raises(InvalidCursorError) as refused:
            cursors.unseal(forged(["l", "s", position]), "l", "s", [EMAIL])
        assert reason(refused) == cursors.NOT_ISSUED
    for payload in (["l", "s"], {"l": 1}, "l", ["l", "s", "a@b"], ["l", "s", ["a"], 1]):
        with pytest.raises(InvalidCursorError) as refused:
            cursors.unseal(forged(payload), "l", "s", [EMAIL])
        assert reason(refused) == cursors.NOT_ISSUED


def test_an_unconfigured_process_says_so_rather_than_issuing_unsigned_cursors() -> None:
    cursors._cipher = None
    with pytest.raises(RuntimeError) as refused:
        cursors.seal("l", "s", [1])
    assert str(refused.value) == (
        "cursors are not configured: call tenants.cursors.configure first"
    )


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_as_a_cursor_is_a_position_or_a_refusal_naming_cursor(cursor: str) -> None:
    refusal: InvalidCursorError | None = None
    try:
        cursors.unseal(cursor, "members", "email", [EMAIL, ID])
    except InvalidCursorError as exc:
        refusal = exc
    assert refusal is None or [f.field for f in refusal.fields] == ["cursor"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.lists(JSON, min_size=0, max_size=3), st.sampled_from(COLUMNS))
def test_any_signed_json_position_is_of_the_columns_type_or_refused(
    position: list[Any], column: Column
) -> None:
    columns = [column] * len(position)
    try:
        values = cursors.unseal(forged(["l", "s", position]), "l", "s", columns)
    except InvalidCursorError:
        return
    for value in values:
        if column.kind in (Kind.TEXT, Kind.CHOICE):
            assert isinstance(value, str) and "\x00" not in value
            assert column.max_length is None or len(value) <= column.max_length
            assert column.kind is Kind.TEXT or value in column.choices
        elif column.kind is Kind.INTEGER:
            assert type(value) is int and column.low <= value <= column.high
        elif column.kind is Kind.UUID:
            assert isinstance(value, uuid.UUID)
        elif column.kind is Kind.DATETIME:
            assert isinstance(value, datetime) and value.tzinfo is not None
        else:
            assert type(value) is date
