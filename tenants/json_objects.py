"""Reading JSON objects whose every member name is given once.

RFC 8259 leaves what a repeated name means to each parser (most take the last, some the
first), so a body that relies on one reading is refused rather than read one way here
and another way by whatever checked it on its way in. The API's bodies and the content
registry's NDJSON lines are read through ``loads``.
"""

from __future__ import annotations

import json
from typing import Any

from tenants.text import is_storable


class DuplicateKeyError(ValueError):
    """A JSON object names a member twice (``{"name": "a", "name": "b"}``)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; DuplicateKeyError naming the first repeated name (or
    "body" when it is no storable text)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key if is_storable(key) else "body")
            seen.add(key)
    return found


def loads(text: str | bytes) -> Any:
    """``json.loads`` refusing a repeated member name anywhere (DuplicateKeyError)."""
    return json.loads(text, object_pairs_hook=unique_keys)
