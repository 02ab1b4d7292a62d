"""Rules of the unit tree over materialised paths; plain Python."""

from __future__ import annotations

from tenants.errors import FieldProblem, InvalidInputError

SEPARATOR = "/"
MAX_DEPTH = 32
#: A unit's name, at most (the column's length).
NAME_MAX_LENGTH = 200


def child_path(parent_path: str | None, unit_id: object) -> str:
    return f"{parent_path}{SEPARATOR}{unit_id}" if parent_path else str(unit_id)


def depth_of(path: str) -> int:
    return path.count(SEPARATOR)


def ancestor_ids(path: str) -> list[str]:
    """Ids from the root down to the unit itself."""
    return path.split(SEPARATOR)


def is_within(path: str, subtree_path: str) -> bool:
    """Whether ``path`` is ``subtree_path`` itself or below it."""
    return path == subtree_path or path.startswith(subtree_path + SEPARATOR)


def subtree_bounds(path: str) -> tuple[str, str]:
    """``(low, high)`` such that a unit is ``path`` or below it exactly when
    ``low <= its path < high`` compared bytewise (``units.path`` is COLLATE "C"): ids are
    fixed-length uuids, so the paths starting with ``path`` are ``path`` itself and those
    continuing with the separator, and the character after ``/`` is ``0``. A range is an
    index range with parameters too, where ``LIKE $1`` is one only when planned with
    the value."""
    return path, path + chr(ord(SEPARATOR) + 1)


def check_move(unit_path: str, new_parent_path: str, subtree_height: int) -> None:
    """Refuse moves that would break the tree; returns None when the move is fine.

    Raises InvalidInputError when the unit is the root, when the new parent is the unit
    or one of its descendants, or when the subtree would end up deeper than MAX_DEPTH.
    """
    if depth_of(unit_path) == 0:
        raise InvalidInputError(
            "the root unit cannot be moved",
            fields=[FieldProblem("parent_id", "the root unit has no parent")],
        )
    if new_parent_path == unit_path:
        raise InvalidInputError(
            "cannot move a unit under itself",
            fields=[FieldProblem("parent_id", "is the unit itself")],
        )
    if is_within(new_parent_path, unit_path):
        raise InvalidInputError(
            "cannot move a unit under one of its own sub-units",
            fields=[FieldProblem("parent_id", "is one of its own sub-units")],
        )
    if depth_of(new_parent_path) + 1 + subtree_height > MAX_DEPTH:
        raise InvalidInputError(
            f"the tree would be deeper than {MAX_DEPTH} levels",
            fields=[FieldProblem("parent_id", f"would nest units deeper than {MAX_DEPTH} levels")],
        )


def check_new_child_depth(parent_path: str) -> None:
    if depth_of(parent_path) + 1 > MAX_DEPTH:
        raise InvalidInputError(
            f"the tree would be deeper than {MAX_DEPTH} levels",
            fields=[FieldProblem("parent_id", f"would nest units deeper than {MAX_DEPTH} levels")],
        )
