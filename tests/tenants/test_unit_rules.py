from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.errors import InvalidInputError
from tenants.units import rules


def test_a_unit_cannot_move_under_its_own_descendant() -> None:
    with pytest.raises(InvalidInputError) as refused:
        rules.check_move("r/a", "r/a/b/c", subtree_height=2)
    assert refused.value.fields[0].field == "parent_id"


def test_a_unit_cannot_move_under_itself() -> None:
    with pytest.raises(InvalidInputError):
        rules.check_move("r/a", "r/a", subtree_height=0)


def test_a_sibling_whose_id_shares_a_prefix_is_not_a_descendant() -> None:
    rules.check_move("r/a", "r/ab", subtree_height=0)


def test_the_root_cannot_move() -> None:
    with pytest.raises(InvalidInputError, match="root"):
        rules.check_move("r", "x", subtree_height=0)


def test_a_move_that_would_nest_too_deep_is_refused() -> None:
    deep_parent = "/".join(["u"] * (rules.MAX_DEPTH + 1))
    with pytest.raises(InvalidInputError, match="deeper"):
        rules.check_move("r/a", deep_parent, subtree_height=0)


def test_paths_list_ancestors_from_the_root() -> None:
    path = rules.child_path(rules.child_path(None, "r"), "a")
    assert rules.ancestor_ids(path) == ["r", "a"] and rules.depth_of(path) == 1


@given(st.lists(st.uuids(), min_size=1, max_size=5), st.lists(st.uuids(), min_size=1, max_size=5),
       st.integers(0, 4))
def test_a_subtree_range_holds_exactly_the_unit_and_the_units_below_it(
    base: list[uuid.UUID], other: list[uuid.UUID], shared: int
) -> None:
    """``subtree_bounds`` agrees with ``is_within`` for any two paths of uuids (bytewise, as
    PostgreSQL compares ``units.path COLLATE "C"``), including paths that share a prefix."""
    subtree = "/".join(map(str, base))
    candidate = "/".join(map(str, [*base[: min(shared, len(base))], *other]))
    for path in (subtree, candidate, f"{subtree}/{other[0]}"):
        low, high = rules.subtree_bounds(subtree)
        in_range = low.encode() <= path.encode() < high.encode()
        assert in_range == rules.is_within(path, subtree), (path, subtree)
