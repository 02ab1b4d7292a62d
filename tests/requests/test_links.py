"""Signed export links (tenants/requests/links.py): pure, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from tenants.requests import links

KEY = "k" * 40
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def made(export: uuid.UUID, member: uuid.UUID, expires_at: datetime) -> tuple[str, str]:
    query = parse_qs(
        urlsplit(links.download_path(KEY, uuid.uuid4(), export, member, expires_at)).query
    )
    return query["expires"][0], query["sig"][0]


def test_a_link_verifies_for_its_export_and_member_until_it_expires() -> None:
    export, member = uuid.uuid4(), uuid.uuid4()
    expires, sig = made(export, member, NOW + timedelta(days=7))
    assert links.is_valid(KEY, export, member, expires, sig, NOW)
    assert not links.is_valid(KEY, export, member, expires, sig, NOW + timedelta(days=8))


def test_a_link_for_another_export_member_expiry_or_secret_is_refused() -> None:
    export, member = uuid.uuid4(), uuid.uuid4()
    expires, sig = made(export, member, NOW + timedelta(days=7))
    assert not links.is_valid(KEY, uuid.uuid4(), member, expires, sig, NOW)
    assert not links.is_valid(KEY, export, uuid.uuid4(), expires, sig, NOW)
    assert not links.is_valid(KEY, export, member, str(int(expires) + 86400), sig, NOW)
    assert not links.is_valid("x" * 40, export, member, expires, sig, NOW)
    assert not links.is_valid(KEY, export, member, expires, sig[:-2] + "AA", NOW)


def test_malformed_links_are_refused_not_raised() -> None:
    export, member = uuid.uuid4(), uuid.uuid4()
    expires, sig = made(export, member, NOW + timedelta(days=7))
    for bad_expires, bad_sig in [
        (None, sig),
        (expires, None),
        ("-1", sig),
        ("9" * 13, sig),
        ("1e9", sig),
        (expires, "%%%"),
        (expires, "\ud800"),
    ]:
        assert not links.is_valid(KEY, export, member, bad_expires, bad_sig, NOW)
