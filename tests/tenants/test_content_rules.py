"""The content registry's rules without a database: one item, NDJSON lines, products,
references, and how problems are reported."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants import text
from tenants.content.models import ContentKind
from tenants.content.rules import (
    MAX_REPORTED,
    ItemSpec,
    LineProblem,
    assign_products,
    check_references,
    field_problems,
    parse_item,
    parse_ndjson,
)
from tenants.members.lifecycle import MemberStatus

MEMBER = uuid.UUID("11111111-1111-4111-8111-111111111111")
PRODUCT = uuid.UUID("22222222-2222-4222-8222-222222222222")


def raw(**fields: Any) -> dict[str, Any]:
    return {
        "external_id": "doc-1",
        "member_id": str(MEMBER),
        "title": "Plan.docx",
        "kind": "organisation",
        **fields,
    }


def spec(line: int, external_id: str = "doc", product: uuid.UUID | None = PRODUCT,
         member: uuid.UUID = MEMBER) -> ItemSpec:
    return ItemSpec(line, product, external_id, member, "t", ContentKind.ORGANISATION, 0, None,
                    None, False)


def reasons(result: ItemSpec | list[LineProblem]) -> dict[str, str]:
    assert isinstance(result, list), result
    return {p.field: p.reason for p in result}


def test_a_minimal_item_takes_defaults_for_size_hold_and_times() -> None:
    parsed = parse_item(raw(), 4)
    assert parsed == ItemSpec(4, None, "doc-1", MEMBER, "Plan.docx", ContentKind.ORGANISATION,
                              0, None, None, False)


def test_times_are_kept_in_utc_and_must_carry_their_offset() -> None:
    parsed = parse_item(raw(item_created_at="2024-05-02T11:30:00+02:00"), 1)
    assert isinstance(parsed, ItemSpec)
    assert parsed.item_created_at == datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    assert reasons(parse_item(raw(item_created_at="2024-05-02T11:30:00"), 1)) == {
        "item_created_at": "expected an ISO 8601 time with its UTC offset"
    }
    assert set(reasons(parse_item(raw(item_created_at="0001-01-01T00:00:00+01:00"), 1))) == {
        "item_created_at"
    }


def test_every_problem_of_an_item_is_reported_at_once() -> None:
    found = reasons(
        parse_item(
            {"member_id": "nope", "title": "", "kind": "borrowed", "size": True,
             "export_url": "javascript:alert(1)", "legal_hold": "yes", "colour": "red"},
            1,
        )
    )
    assert found == {
        "colour": "is not a known field",
        "external_id": "is required",
        "member_id": "expected a uuid string",
        "title": "is empty",
        "kind": "expected one of organisation, personal",
        "size": "expected an integer (bytes)",
        "export_url": "expected an https:// URL without spaces",
        "legal_hold": "expected true or false",
    }


def test_values_of_any_json_type_in_any_field_are_refused_not_raised() -> None:
    for value in ({"a": 1}, [1], 1.5):
        for name in ("external_id", "member_id", "title", "kind", "size", "product_id",
                     "item_created_at", "export_url", "legal_hold"):
            assert set(reasons(parse_item(raw(**{name: value}), 1))) == {name}, (name, value)


def test_text_that_cannot_be_stored_or_is_too_long_is_refused() -> None:
    assert reasons(parse_item(raw(title="a\x00b"), 1))["title"].startswith("contains a NUL")
    assert reasons(parse_item(raw(external_id="x" * 256), 1)) == {
        "external_id": "is longer than 255 characters"
    }
    assert reasons(parse_item(raw(size=2**63), 1))["size"].startswith("must be between 0")


def test_ndjson_lines_are_numbered_from_one_counting_blank_lines() -> None:
    body = b"\n".join([orjson.dumps(raw(external_id="a")), b"", b"{bad", b"\r",
                       orjson.dumps(raw(external_id="b")) + b"\r"])
    items, problems = parse_ndjson(body)
    assert [(i.line, i.external_id) for i in items] == [(1, "a"), (5, "b")]
    assert [(p.line, p.field) for p in problems] == [(3, "body")]


def test_a_stream_past_the_item_limit_is_refused_on_the_first_line_too_many() -> None:
    body = b"\n".join(orjson.dumps(raw(external_id=str(n))) for n in range(5))
    items, problems = parse_ndjson(body, max_items=3)
    assert len(items) == 3
    assert problems == [LineProblem(4, "body", "a request holds at most 3 items")]


def test_a_product_client_may_leave_the_product_out_but_not_name_another() -> None:
    own, other = spec(1, product=None), spec(2, product=uuid.uuid4())
    assigned, problems = assign_products([own, other, spec(3)], PRODUCT)
    assert [(i.line, i.product_id) for i in assigned] == [(1, PRODUCT), (3, PRODUCT)]
    assert [(p.line, p.forbidden) for p in problems] == [(2, True)]
    assigned, problems = assign_products([own, spec(3)], None)
    assert [i.line for i in assigned] == [3]
    assert [(p.line, p.field, p.forbidden) for p in problems] == [(1, "product_id", False)]


def test_references_to_unknown_or_departed_members_and_repeated_ids_are_refused() -> None:
    gone, ghost = uuid.uuid4(), uuid.uuid4()
    items = [spec(1, "a"), spec(2, "b", member=gone), spec(3, "c", member=ghost), spec(4, "a"),
             spec(5, "d", product=uuid.uuid4())]
    members = {MEMBER: MemberStatus.DEPARTING, gone: MemberStatus.DEPARTED}
    problems = check_references(items, {PRODUCT}, members)
    assert [(p.line, p.field) for p in problems] == [
        (2, "member_id"), (3, "member_id"), (4, "external_id"), (5, "product_id")
    ]
    assert problems[2].reason == "is already given on line 1"


def test_reported_problems_are_capped_in_line_order_and_named_by_line_or_field() -> None:
    problems = [LineProblem(n, "size", "bad") for n in range(200, 0, -1)]
    by_line = field_problems(problems, by_line=True)
    assert len(by_line) == MAX_REPORTED
    assert (by_line[0].field, by_line[0].reason) == ("line 1", "size: bad")
    single = field_problems([LineProblem(1, "size", "bad")], by_line=False)
    assert [(f.field, f.reason) for f in single] == [("size", "bad")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_items_or_problems_never_an_exception(body: bytes) -> None:
    items, problems = parse_ndjson(body)
    assert items or problems


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=255).filter(lambda s: s.strip() and text.problem(s) is None),
    st.sampled_from(["organisation", "personal"]),
    st.integers(min_value=0, max_value=2**63 - 1),
)
def test_a_valid_item_survives_the_trip_through_a_line(
    external_id: str, kind: str, size: int
) -> None:
    line = orjson.dumps(raw(external_id=external_id, kind=kind, size=size, product_id=str(PRODUCT)))
    items, problems = parse_ndjson(line)
    assert problems == []
    stored = unicodedata.normalize("NFC", external_id)
    assert (items[0].external_id, items[0].kind.value, items[0].size) == (stored, kind, size)


def test_an_ndjson_title_or_external_id_with_a_control_or_bidi_character_is_refused_by_line() -> None:
    body = ndjson_lines(
        raw(external_id="doc\u202e1", product_id=str(PRODUCT)),
        raw(external_id="doc-2", title="bell\u0007", product_id=str(PRODUCT)),
    )
    items, problems = parse_ndjson(body)
    assert items == []
    assert [(p.line, p.field) for p in problems] == [(1, "external_id"), (2, "title")]
    assert "U+202E" in problems[0].reason and "U+0007" in problems[1].reason


def ndjson_lines(*items: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def test_an_ndjson_line_naming_a_field_twice_is_refused_naming_it() -> None:
    """``POST /v1/content`` refused a body naming a member twice, the same object as a
    bulk line was taken (with whichever title the parser kept)."""
    member, product = uuid.uuid4(), uuid.uuid4()
    line = (
        f'{{"external_id": "d1", "member_id": "{member}", "product_id": "{product}",'
        ' "kind": "personal", "title": "first", "title": "second"}'
    )
    items, problems = parse_ndjson(line.encode())
    assert items == []
    assert [(p.line, p.field, p.reason) for p in problems] == [
        (1, "title", "is named twice in the line")
    ]
