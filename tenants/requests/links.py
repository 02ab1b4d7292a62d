"""Signed, expiring download links for exports; no I/O.

The link names the export, the member and the expiry, signed with a key derived from
the service's secret. It is a second lock, not the only one: the download also needs the
member's own session, so a forwarded link is useless to anyone else.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from urllib.parse import urlencode

from itsdangerous import Signer

#: The salt: a key derived for these links alone, unlike any other use of the secret.
PURPOSE = b"tenantry privacy export links v1"


def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt=PURPOSE, key_derivation="hmac", digest_method=hashlib.sha256)


def _message(export_id: uuid.UUID, member_id: uuid.UUID, expires: int) -> bytes:
    return f"{export_id}:{member_id}:{expires}".encode()


def signature(secret_key: str, export_id: uuid.UUID, member_id: uuid.UUID, expires: int) -> str:
    """The link's ``sig``: itsdangerous' HMAC-SHA256 signature, URL-safe base64."""
    return _signer(secret_key).get_signature(_message(export_id, member_id, expires)).decode()


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
    if not expires or not sig or not expires.isdigit() or len(expires) > 12 or not sig.isascii():
        return False
    if int(expires) <= now.timestamp():
        return False
    return _signer(secret_key).verify_signature(
        _message(export_id, member_id, int(expires)), sig.encode()
    )
