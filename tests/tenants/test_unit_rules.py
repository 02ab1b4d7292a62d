from __future__ import annotations

import pytest

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
