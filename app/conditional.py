"""Conditional requests (RFC 9110 §13): whether a client already holds the representation
it would be sent; plain Python."""

from __future__ import annotations

import hashlib


def _opaque(tag: str) -> str:
    """An entity tag without its weakness: ``W/"x"`` and ``"x"`` compare equal weakly."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` matches the current ``etag`` (so the answer is
    304): ``*`` matches any current representation, and a list of tags matches when one
    of them is ``etag`` by weak comparison (§13.1.2: a GET's If-None-Match compares
    weakly, so a client that kept ``W/"x"`` holds ``"x"``)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    current = _opaque(etag)
    return any(_opaque(tag) == current for tag in header.split(","))


def entity_tag(body: bytes) -> str:
    """A strong entity tag of a representation: its bytes' digest (RFC 9110 §8.8.3). The
    API renders a resource the same way each time, so equal bytes are an equal state."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def if_match(header: str, etag: str) -> bool:
    """Whether ``If-Match: header`` holds for the current ``etag`` (RFC 9110 §13.1.1):
    ``*`` holds for any current representation; a list holds when one of its tags is
    ``etag`` by strong comparison (a weak tag never does)."""
    if header.strip() == "*":
        return True
    return any(tag.strip() == etag for tag in header.split(","))
