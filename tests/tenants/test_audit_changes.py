"""What an update's audit event says changed: the fields whose values differ as JSON, with
their old and new JSON values; exercised without a database."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.audit.reading import action_words
from tenants.audit.service import changed_fields, jsonable


class Colour(enum.StrEnum):
    RED = "red"


def test_only_the_fields_that_differ_are_reported_with_their_json_values() -> None:
    unit, other = uuid.uuid4(), uuid.uuid4()
    before = {"name": "Ada", "unit_id": unit, "roles": ["member"], "status": Colour.RED}
    after = {"name": "Ada L.", "unit_id": other, "roles": ["member"], "status": Colour.RED}
    assert changed_fields(before, after) == (
        {"name": "Ada", "unit_id": str(unit)},
        {"name": "Ada L.", "unit_id": str(other)},
    )
    assert changed_fields(before, dict(before)) == ({}, {})


def test_values_that_differ_in_python_but_not_as_json_are_not_a_change() -> None:
    moment = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=5)))
    before = {"status": Colour.RED, "kinds": {"b", "a"}, "at": moment}
    after = {"status": "red", "kinds": ["a", "b"], "at": elsewhere}
    assert changed_fields(before, after) == ({}, {})


def test_a_field_new_to_the_record_is_a_change_from_null() -> None:
    assert changed_fields({}, {"manager_id": None, "email": "a@b.example"}) == (
        {"email": None},
        {"email": "a@b.example"},
    )


values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "red"]),
    st.sampled_from(list(Colour)), st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.frozensets(st.sampled_from(["a", "b"])), st.uuids(version=4),
)
records = st.dictionaries(st.sampled_from(["name", "email", "status", "roles", "unit_id"]), values)


@given(records, records)
def test_a_change_is_exactly_a_field_whose_json_differs(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    old, new = changed_fields(before, after)
    differ = [k for k in after if jsonable(before.get(k)) != jsonable(after.get(k))]
    assert list(new) == list(old) == differ
    assert new == {k: jsonable(after[k]) for k in differ}
    assert old == {k: jsonable(before.get(k)) for k in differ}


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("session.signed_in", "Session: signed in"),
        ("api_token.created", "API token: created"),
        ("access_grant.emergency_started", "Access grant: emergency started"),
        ("member.scim_updated", "Member: SCIM updated"),
        ("sso.settings_changed", "SSO: settings changed"),
        ("organisation", "Organisation"),
        ("privacy_request.export.ready", "Privacy request: export ready"),
    ],
)
def test_an_action_reads_as_words_about_its_subject(action: str, words: str) -> None:
    assert action_words(action) == words
