"""The hash chain, exercised without a database: every kind of tampering is found where it
happened."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.audit.chain import (
    GENESIS,
    ChainedEvent,
    ChainHead,
    StoredEvent,
    canonical_json,
    event_hash,
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
    assert result.broken is not None and result.broken.seq == 4
    assert "edited" in result.broken.reason


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
    assert result.broken is not None and result.broken.seq == 4


def test_a_truncated_tail_is_found_against_a_recorded_head() -> None:
    events = chain(6)
    recorded = verify_chain(events).head
    result = verify_chain(events[:4], expected_head=recorded)
    assert result.broken is not None and result.broken.seq == 5
    assert "removed from the end" in result.broken.reason


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
    assert result.broken is not None and result.broken.seq == 3


def test_canonical_json_sorts_keys_and_drops_insignificant_space() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="canonical"):
        canonical_json({"x": float("nan")})


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
