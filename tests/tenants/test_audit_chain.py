"""The hash chain, exercised without a database: every kind of tampering is found where it
happened."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.audit.chain import (
    GENESIS,
    ChainBreak,
    ChainedEvent,
    ChainHead,
    ChainVerifier,
    StoredEvent,
    canonical_json,
    event_hash,
    format_time,
    verify_chain,
)


def chain(n: int) -> list[StoredEvent]:
    events, prev = [], GENESIS
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for seq in range(1, n + 1):
        event = ChainedEvent(
            "org",
            seq,
            start + timedelta(seconds=seq),
            "system:t",
            "t",
            "member.updated",
            "member",
            f"m{seq}",
            {"name": "a"},
            {"name": f"b{seq}"},
            "r",
            "127.0.0.1",
        )
        digest = event_hash(prev, event)
        events.append(StoredEvent(event, prev, digest))
        prev = digest
    return events


def test_an_untouched_chain_verifies_and_reports_its_head() -> None:
    events = chain(5)
    result = verify_chain(events)
    assert result.ok and result.checked == 5
    assert result.head == ChainHead(5, events[-1].hash)


def test_an_edited_event_is_found() -> None:
    events = chain(6)
    edited = dataclasses.replace(events[3].event, after={"name": "forged"})
    events[3] = dataclasses.replace(events[3], event=edited)
    result = verify_chain(events)
    assert result.broken == ChainBreak(4, "its content does not match its hash (edited)")


def test_a_deleted_event_is_found() -> None:
    events = chain(6)
    del events[2]
    assert verify_chain(events).broken.seq == 3  # type: ignore[union-attr]


def test_swapped_events_are_found_at_the_first() -> None:
    events = chain(6)
    events[1], events[4] = events[4], events[1]
    assert verify_chain(events).broken.seq == 2  # type: ignore[union-attr]


def test_an_inserted_event_renumbering_the_rest_is_found() -> None:
    events = chain(5)
    forged = dataclasses.replace(events[2].event, action="member.deleted")
    tail = [
        dataclasses.replace(e, event=dataclasses.replace(e.event, seq=e.event.seq + 1))
        for e in events[2:]
    ]
    inserted = StoredEvent(forged, events[1].hash, event_hash(events[1].hash, forged))
    result = verify_chain([*events[:2], inserted, *tail])
    assert result.broken == ChainBreak(
        4, "its link to the previous event does not match (inserted, removed or reordered)"
    )


def test_a_truncated_tail_is_found_against_a_recorded_head() -> None:
    events = chain(6)
    recorded = verify_chain(events).head
    result = verify_chain(events[:4], expected_head=recorded)
    assert result.broken == ChainBreak(
        5, "the chain ends at 4 but the recorded head is at 6 (events were removed from the end)"
    )


def test_a_rewritten_chain_is_found_against_a_recorded_head() -> None:
    recorded = verify_chain(chain(3)).head
    rewritten = chain(4)
    rewritten = [dataclasses.replace(e, hash=e.hash) for e in rewritten]
    other = dataclasses.replace(rewritten[0].event, actor="system:other")
    first_hash = event_hash(GENESIS, other)
    rebuilt = [StoredEvent(other, GENESIS, first_hash)]
    prev = first_hash
    for e in rewritten[1:]:
        digest = event_hash(prev, e.event)
        rebuilt.append(StoredEvent(e.event, prev, digest))
        prev = digest
    result = verify_chain(rebuilt, expected_head=recorded)
    assert result.broken == ChainBreak(
        3, "it does not match the recorded head (the chain was rewritten)"
    )


def test_canonical_json_sorts_keys_and_drops_insignificant_space() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def test_canonical_json_refuses_nan() -> None:
    for number in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="non-finite") as refused:
            canonical_json({"x": [number]})
        assert str(refused.value) == "non-finite numbers have no canonical JSON form"


def test_any_mapping_is_encoded_as_the_dict_with_the_same_items() -> None:
    # Event content may arrive as a read-only mapping (not a dict): it must hash the same.
    content = {"b": [1.0, {"c": 2.5}], "a": None, 3: "x"}
    assert canonical_json(MappingProxyType(content)) == canonical_json(content)
    assert canonical_json(content) == b'{"3":"x","a":null,"b":[1,{"c":2.5}]}'


@given(st.integers(min_value=1, max_value=12), st.data())
def test_changing_any_single_event_breaks_the_chain_exactly_there(
    n: int, data: st.DataObject
) -> None:
    events = chain(n)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    field = data.draw(st.sampled_from(["actor", "action", "target_id", "request_id"]))
    changed = dataclasses.replace(events[index].event, **{field: "tampered"})
    events[index] = dataclasses.replace(events[index], event=changed)
    assert verify_chain(events).broken.seq == index + 1  # type: ignore[union-attr]


# --- reading rows, heads, and the ends of a chain -----------------------------------------


def row_of(event: ChainedEvent, *, as_text: bool) -> dict[str, object]:
    row: dict[str, object] = {
        f.name: getattr(event, f.name) for f in dataclasses.fields(ChainedEvent)
    }
    if as_text:
        row["before"] = json.dumps(event.before)
        row["after"] = json.dumps(event.after).encode()
    return row


def test_an_event_read_from_its_row_is_the_event_whatever_form_its_json_came_in() -> None:
    for request_id in (None, "req-7"):
        event = dataclasses.replace(
            chain(1)[0].event, before={"a": [1, "x"]}, after={"b": 2}, request_id=request_id
        )
        for as_text in (False, True):
            read = ChainedEvent.from_row("org", 1, row_of(event, as_text=as_text))
            assert read == event
            assert event_hash(GENESIS, read) == event_hash(GENESIS, event)


def test_every_column_of_a_row_is_covered_by_the_hash() -> None:
    event = chain(1)[0].event
    digest = event_hash(GENESIS, event)
    changed = {
        "occurred_at": event.occurred_at + timedelta(microseconds=1),
        "actor": "system:x", "actor_display": "x", "action": "member.created",
        "target_type": "unit", "target_id": "m9", "before": {"name": "z"},
        "after": {"name": "z"}, "request_id": "other", "client_addr": "10.0.0.1",
    }
    for name, value in changed.items():
        row = row_of(event, as_text=False)
        row[name] = value
        assert event_hash(GENESIS, ChainedEvent.from_row("org", 1, row)) != digest, name
    assert event_hash(GENESIS, ChainedEvent.from_row("other", 1, row_of(event, as_text=False))) != digest
    assert event_hash(GENESIS, ChainedEvent.from_row("org", 2, row_of(event, as_text=False))) != digest


def test_times_enter_the_chain_in_utc_with_microseconds() -> None:
    moment = datetime(2026, 3, 1, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-02-28T23:02:03.000004Z"


def test_a_time_hashes_alike_whatever_the_servers_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moment = datetime(2026, 3, 1, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))
    try:
        for zone in ("America/New_York", "Asia/Kolkata"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            assert format_time(moment) == "2026-02-28T23:02:03.000004Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_head_is_printed_and_parsed_back() -> None:
    head = verify_chain(chain(3)).head
    assert ChainHead.parse(str(head)) == head
    assert str(head) == f"3:{head.hash}"


@pytest.mark.parametrize(
    "text",
    ["", "3", ":" + "a" * 64, "x:" + "a" * 64, "-3:" + "a" * 64, "3:" + "a" * 63,
     "3:" + "a" * 65, "3:" + "A" * 64, "3:" + "g" * 64, "3 :" + "a" * 64, "3:" + "X" * 64],
)
def test_a_malformed_head_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SEQ:HASH") as refused:
        ChainHead.parse(text)
    assert str(refused.value) == "expected SEQ:HASH, e.g. 42:3f0c…(64 hex digits)"


def test_an_event_whose_content_was_deleted_breaks_the_chain_there() -> None:
    events = chain(4)
    verifier = ChainVerifier()
    assert verifier.feed(events[0]) and verifier.feed(events[1])
    assert verifier.feed_missing(3) is False
    assert verifier.broken == ChainBreak(3, "its chain entry remains but the event itself was deleted")
    assert verifier.feed(events[3]) is False
    assert verifier.feed_missing(4) is False
    assert verifier.broken.seq == 3
    result = verifier.finish()
    assert (result.checked, result.head.seq, result.ok) == (2, 2, False)


def test_feeding_says_stop_at_the_first_bad_event_so_a_stream_is_not_read_to_its_end() -> None:
    events = chain(4)
    edited = dataclasses.replace(events[1].event, actor_display="forged")
    verifier = ChainVerifier()
    assert verifier.feed(events[0]) is True
    assert verifier.feed(dataclasses.replace(events[1], event=edited)) is False
    assert verifier.broken == ChainBreak(2, "its content does not match its hash (edited)")
    assert verifier.feed(events[2]) is False
    assert verifier.finish().checked == 1


def test_a_missing_entry_ahead_of_the_chain_names_the_first_gap() -> None:
    verifier = ChainVerifier()
    assert verifier.feed(chain(1)[0])
    assert verifier.feed_missing(5) is False
    assert verifier.broken == ChainBreak(2, "event 2 is missing")
    again = ChainVerifier()
    assert again.feed(chain(1)[0])
    assert again.feed_missing(1) is False
    assert again.broken == ChainBreak(1, "event 1 is out of order or duplicated")


def test_the_stored_head_catches_a_cut_tail_an_edited_last_event_and_events_added_behind() -> None:
    events = chain(5)
    full = verify_chain(events).head
    cut = verify_chain(events[:3], stored_head=full)
    assert cut.broken is not None and cut.broken.seq == 4
    assert "stored head is at 5" in cut.broken.reason
    other = ChainHead(5, "f" * 64)
    edited = verify_chain(events, stored_head=other)
    assert edited.broken == ChainBreak(5, "the last event does not match the stored head")
    behind = verify_chain(events, stored_head=verify_chain(events[:2]).head)
    assert behind.broken is not None and behind.broken.seq == 3
    assert "added outside the service" in behind.broken.reason
    assert verify_chain(events, stored_head=full).ok
    assert verify_chain(events, expected_head=verify_chain(events[:2]).head).ok
    assert verify_chain([], stored_head=None).head == ChainHead(0, GENESIS)


def test_a_recorded_head_equal_in_length_but_not_in_hash_is_a_rewrite() -> None:
    events = chain(3)
    result = verify_chain(events, expected_head=ChainHead(3, "e" * 64))
    assert result.broken is not None and result.broken.seq == 3
    assert "recorded head" in result.broken.reason
    assert result.checked == 2


def test_the_hashed_form_of_an_event_is_fixed_so_heads_recorded_earlier_still_verify() -> None:
    """Heads printed by ``tenantry audit verify`` are kept outside the service and compared
    later: the canonical form and the hash of an event may never change between versions."""
    event = chain(1)[0].event
    assert canonical_json(event.payload()).decode() == (
        '{"action":"member.updated","actor":"system:t","actor_display":"t",'
        '"after":{"name":"b1"},"before":{"name":"a"},"client_addr":"127.0.0.1",'
        '"occurred_at":"2026-01-01T00:00:01.000000Z","request_id":"r","seq":1,'
        '"target_id":"m1","target_type":"member","tenant_id":"org"}'
    )
    assert event_hash(GENESIS, event) == (
        "7faa088d6f921c02c66609294cc332d865149bacac836415b7f8c5287d421c5b"
    )


def _json_dumps_form(value: Any) -> bytes:
    """The canonical form as every chain before orjson was hashed: Python's json module."""

    def whole(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): whole(x) for k, x in v.items()}
        if isinstance(v, list):
            return [whole(x) for x in v]
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    return json.dumps(
        whole(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    # Where Python and orjson write numbers differently: fractions in exponent form.
    | st.floats(min_value=-1e-4, max_value=1e-4) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_canonical_json_is_byte_for_byte_what_chains_were_hashed_in_before(value: Any) -> None:
    # Existing chains keep verifying only if every value hashes to the same bytes: huge
    # integers, fractions in exponent form (1e-07), control characters and astral text.
    assert canonical_json(value) == _json_dumps_form(value)


def test_canonical_json_writes_numbers_as_python_did() -> None:
    value = {"small": 1e-07, "big": 2**70, "neg": -(2**63) - 1, "max": 2**64 - 1, "x": 2.5e-05}
    assert canonical_json(value) == _json_dumps_form(value)
    assert canonical_json(value) == (
        b'{"big":1180591620717411303424,"max":18446744073709551615,'
        b'"neg":-9223372036854775809,"small":1e-07,"x":2.5e-05}'
    )


def test_canonical_json_writes_whole_floats_as_integers_keys_as_text_and_utf8() -> None:
    value = {"b": [1.0, 2.5, (1,)], "a": {"z": None, 1: True}, "\u00e9": "\u00fc"}
    expected = '{"a":{"1":true,"z":null},"b":[1,2.5,[1]],"\u00e9":"\u00fc"}'
    assert canonical_json(value).decode() == expected


def _event_row(before: Any, after: Any) -> dict[str, Any]:
    return {
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC), "actor": "system:t", "actor_display": "t",
        "action": "member.updated", "target_type": "member", "target_id": "m1",
        "before": before, "after": after, "request_id": None, "client_addr": None,
    }


@given(st.dictionaries(st.text(), JSON_VALUES, max_size=4))
def test_stored_snapshots_are_read_as_pythons_json_reads_them(value: dict[str, Any]) -> None:
    # The sealer and verification hash what they decode: a snapshot (a JSON object, as
    # stored) decoded differently from json.loads (the decoder every chain so far was
    # sealed with) would break old chains.
    text = json.dumps(value, ensure_ascii=False)
    event = ChainedEvent.from_row("org", 1, _event_row(text, text.encode()))
    assert event.before == json.loads(text)
    assert event.after == json.loads(text)
    assert canonical_json(event.payload()) == canonical_json(
        ChainedEvent.from_row("org", 1, _event_row(json.loads(text), json.loads(text))).payload()
    )


def test_what_orjson_would_misread_or_refuse_is_read_as_json_reads_it() -> None:
    # orjson reads integers beyond 64 bits as floats without a word, and refuses lone
    # surrogates: both must come out as json.loads gives them.
    big = '{"n": -9223372036854775809, "m": 18446744073709551616, "k": 9223372036854775808}'
    event = ChainedEvent.from_row("org", 1, _event_row(big, big.encode()))
    assert event.before == event.after == {
        "n": -9223372036854775809, "m": 18446744073709551616, "k": 9223372036854775808,
    }
    assert all(type(v) is int for v in event.before.values())
    lone = '{"name": "\\ud800"}'
    assert ChainedEvent.from_row("org", 1, _event_row(lone, None)).before == {"name": "\ud800"}


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)),
)
def test_times_are_written_as_strftime_wrote_them(moment: datetime, offset: timedelta) -> None:
    aware = moment.replace(tzinfo=timezone(offset))
    assert format_time(aware) == aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_time_before_the_year_1000_keeps_strftimes_year() -> None:
    moment = datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert format_time(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
