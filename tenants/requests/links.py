"""Signed, expiring download links for exports; no I/O.

The link names the export, the member and the expiry, signed with a key derived from
the service's secret. It is a second lock, not the only one: the download also needs the
member's own session, so a forwarded link is useless to anyone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime
from urllib.parse import urlencode

PURPOSE = b"tenantry privacy export links v1"


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), PURPOSE, hashlib.sha256).digest()


def signature(secret_key: str, export_id: uuid.UUID, member_id: uuid.UUID, expires: int) -> str:
    message = f"{export_id}:{member_id}:{expires}".encode()
    digest = hmac.new(_key(secret_key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def download_path(
    secret_key: str, request_id: uuid.UUID, export_id: uuid.UUID, member_id: uuid.UUID,
    expires_at: datetime,
) -> str:
    expires = int(expires_at.timestamp())
    query = urlencode({"expires": expires,
                       "sig": signature(secret_key, export_id, member_id, expires)})
    return f"/account/privacy-requests/{request_id}/export?{query}"


def is_valid(
    secret_key: str, export_id: uuid.UUID, member_id: uuid.UUID, expires: str | None,
    sig: str | None, now: datetime,
) -> bool:
    """Whether the link was made by this service for this export and member and has not
    expired."""
    if not expires or not sig or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) <= now.timestamp():
        return False
    expected = signature(secret_key, export_id, member_id, int(expires))
    return hmac.compare_digest(expected, sig)
