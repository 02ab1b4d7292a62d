"""Signing webhook requests the Standard Webhooks way, and checking such a signature.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

- ``webhook-id``: the event's idempotency key, the same on every attempt, so a receiver
  that saw it already can answer 2xx and do nothing;
- ``webhook-timestamp``: unix seconds of this attempt; receivers refuse old ones (replay);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one per
  secret in use, space separated: while a product rotates its secret the old and new
  both sign, so the receiver can switch at its own pace.

A secret reads ``whsec_<base64 of 32 random bytes>``; the HMAC key is the decoded bytes.
The signature itself is made by the ``standardwebhooks`` library (the reference
implementation products are told to verify with); this module adds what the library
does not do: several secrets at once (rotation), a stricter secret format, and a clock
and tolerance a caller can give. Pure: no I/O, no clock unless none is given.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
#: How far a receiver accepts a timestamp from its own clock (either way), in seconds.
TOLERANCE = 300


class WebhookVerificationError(Exception):
    """The request is not signed with a secret the receiver knows, or is too old/new."""


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret reads whsec_<base64>") from None


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC>`` of one secret over ``{id}.{timestamp}.{body}``."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(_key(secret)).sign(msg_id=msg_id, timestamp=when, data=body)


def sign(secrets_in_use: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers for one attempt; one signature per secret, current first."""
    if not secrets_in_use:
        raise ValueError("a webhook needs at least one secret to sign with")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, msg_id, timestamp, body) for s in secrets_in_use
        ),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a received request as a receiver would; returns its ``webhook-id``.

    Header names are matched case-insensitively. Raises WebhookVerificationError when a
    header is missing, the timestamp is further than ``tolerance`` seconds from ``now``,
    or none of the ``v1`` signatures is the one ``secret`` makes (compared in constant time).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        stamp = lowered["webhook-timestamp"]
        offered = lowered["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the accepted window")
    expected = signature(secret, msg_id, timestamp, body).encode()
    for candidate in offered.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no signature matches the secret")
