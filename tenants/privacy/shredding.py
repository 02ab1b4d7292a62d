"""Crypto-shredding of the audit trail's personal fields.

An audit event is append-only and hash-chained: nothing in it may change once sealed. So
the personal fields of an event (the acting member's display name and address, personal
attributes in its before/after snapshots) are stored sealed with the key of the member
they are about (``member_keys``), and the chain hashes the sealed text. Erasing the member
deletes the key: every event still verifies, and what it said about the person can no
longer be read. Readers (the API, the console, the export) open sealed values with
``reveal_rows``; a value whose key is gone reads as ``[erased]`` (``erased member`` for an
actor).

A sealed value is the text ``enc1:<member id>:<base64url(nonce | AES-256-GCM ciphertext)>``
of the value's JSON; the organisation and member ids are the associated data, so a value
cannot be moved to another member's or organisation's event and still open.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenants import db
from tenants.actors import Actor, ActorKind

PREFIX = "enc1:"
#: What a sealed value reads as once its member's key is gone.
ERASED_VALUE = "[erased]"
#: What a sealed actor reads as once their key is gone (console and API).
ERASED_MEMBER = "erased member"

#: Keys of before/after snapshots that hold a person's data wherever they appear.
PERSONAL_KEYS = frozenset({
    "email", "name", "idp_subject", "external_id", "user_name", "member_email",
    "member_name", "display_name", "scim", "client_addr", "user_agent", "recipients",
    "message", "to", "admin_email", "emails", "phoneNumbers", "addresses", "displayName",
    "nickName", "title", "userName", "externalId", "ims", "photos", "x509Certificates",
    # Free text written about the person (a departure's reason, a grant's justification).
    "reason", "justification", "case_reference", "note", "body", "answer",
    "decision_reason", "revoke_reason", "review_note", "extension_reason", "hold_member_text",
})
#: Keys that never hold personal data even in an event about a member's SCIM attributes.
NOT_PERSONAL_KEYS = frozenset({
    "status", "status_before", "unit_id", "manager_id", "roles", "active",
    "member_id", "departure_id", "kinds", "by_product", "erased_at", "audit_event_id",
})


def _aad(tenant_id: str, member_id: str) -> bytes:
    return f"{tenant_id}/{member_id}".encode()


def json_bytes(value: Any) -> bytes:
    """``value`` (a JSON value) as JSON, with orjson: every audited write turns its values
    into JSON several times, and the standard encoder cost it 2 µs each. Integers beyond
    64 bits, which orjson refuses, take the standard encoder."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def seal(key: bytes, tenant_id: str, member_id: str, value: Any) -> str:
    """``value`` (any JSON value) sealed for ``member_id``."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json_bytes(value), _aad(tenant_id, member_id))
    return f"{PREFIX}{member_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def sealed_for(value: Any) -> str | None:
    """The member id a sealed value belongs to; None when ``value`` is not sealed."""
    if isinstance(value, str) and value.startswith(PREFIX):
        member, _, _ = value[len(PREFIX):].partition(":")
        return member
    return None


def unseal(key: bytes | None, tenant_id: str, value: str, *, erased: Any = ERASED_VALUE) -> Any:
    """The value sealed in ``value``; ``erased`` when the key is gone or does not open it."""
    member, _, body = value[len(PREFIX):].partition(":")
    if key is None:
        return erased
    raw = base64.urlsafe_b64decode(body.encode())
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(tenant_id, member))
    except InvalidTag:
        return erased
    return json.loads(plain)


# --- what to seal in an event (pure) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subjects:
    """Whose keys seal an event: ``actor`` seals the actor's display and address,
    ``subject`` the personal values of before/after (either may be None)."""

    actor: str | None
    subject: str | None


def subjects_of(
    actor: Actor, target_type: str, target_id: object,
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
) -> Subjects:
    """The member whose data an event's snapshots hold: the target member, else the
    member the snapshots name, else the acting member."""
    acting = actor.id if actor.kind == ActorKind.MEMBER else None
    subject: str | None = None
    if target_type == "member":
        subject = str(target_id)
    else:
        for snapshot in (after, before):
            if snapshot and isinstance(snapshot.get("member_id"), str | uuid.UUID):
                subject = str(snapshot["member_id"])
                break
    return Subjects(acting, subject or acting)


def _needed(
    who: Subjects, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
    all_but_listed: bool,
) -> Subjects:
    """``who`` without a subject when the snapshots hold nothing personal (no key is
    created for nothing)."""
    personal = any(
        v is not None and is_personal(k, all_but_listed=all_but_listed)
        for snapshot in (before, after) if snapshot for k, v in snapshot.items()
    )
    return who if personal else Subjects(who.actor, None)


def is_personal(key: str, *, all_but_listed: bool) -> bool:
    if all_but_listed:
        return key not in NOT_PERSONAL_KEYS
    return key in PERSONAL_KEYS


def seal_snapshot(
    snapshot: Mapping[str, Any] | None, key: bytes, tenant_id: str, member_id: str,
    *, all_but_listed: bool,
) -> dict[str, Any] | None:
    """``snapshot`` (already JSON values) with its personal values sealed."""
    if snapshot is None:
        return None
    return {
        k: seal(key, tenant_id, member_id, v)
        if v is not None and is_personal(k, all_but_listed=all_but_listed) else v
        for k, v in snapshot.items()
    }


# --- keys ---------------------------------------------------------------------------------

KEYS_SQL = """
WITH wanted AS (
  SELECT * FROM unnest($2::uuid[], $3::bytea[]) AS w (member_id, key)
), created AS (
  INSERT INTO member_keys (id, tenant_id, member_id, key, created_at, updated_at)
  SELECT gen_random_uuid(), $1, w.member_id, w.key, now(), now() FROM wanted w
  ON CONFLICT (tenant_id, member_id) DO NOTHING
  RETURNING member_id, key
)
SELECT member_id, key, true AS fresh FROM created
UNION ALL
SELECT k.member_id, k.key, false FROM member_keys k
 WHERE k.tenant_id = $1 AND k.member_id = ANY($2::uuid[])
"""

#: Keys for sealing, by (organisation, member): only keys read back as committed (never
#: one created by a transaction that may still roll back). A key erased meanwhile (here or
#: on another node) may still seal a value here: that value is then as unreadable as the
#: rest of the person's, which is what the erasure asked for. Reading never uses it.
_SEALING: dict[tuple[str, str], bytes] = {}
_SEALING_MAX = 100_000

READ_KEYS_SQL = "SELECT member_id, key FROM member_keys WHERE tenant_id = $1 AND member_id = ANY($2::uuid[])"


def _uuids(member_ids: Iterable[str]) -> list[uuid.UUID]:
    found = []
    for m in set(member_ids):
        try:
            found.append(uuid.UUID(m))
        except ValueError:
            continue
    return found


async def member_keys(member_ids: Iterable[str], *, create: bool) -> dict[str, bytes]:
    """The keys of ``member_ids`` in the open organisation, created where missing when
    ``create`` (a member erased since has none: their new events are sealed with a fresh
    key, which their next erasure deletes again)."""
    org = db.current_org()
    cached: dict[str, bytes] = {}
    if create:
        # Every write that names a member seals with their key: the keys this process
        # already read are looked up by the ids as given, before any parsing.
        tenant = str(org)
        missing: list[str] = []
        for m in set(member_ids):
            key = _SEALING.get((tenant, m))
            if key is None:
                missing.append(m)
            else:
                cached[m] = key
        if not missing:
            return cached
        member_ids = missing
    wanted = _uuids(member_ids)
    if not wanted:
        return cached
    if not create:
        rows = await db.fetch(READ_KEYS_SQL, org, wanted)
        return {str(r["member_id"]): bytes(r["key"]) for r in rows}
    rows = await db.fetch(KEYS_SQL, org, wanted, [os.urandom(32) for _ in wanted])
    if len(_SEALING) > _SEALING_MAX:
        _SEALING.clear()
    for r in rows:
        if not r["fresh"]:
            _SEALING[(str(org), str(r["member_id"]))] = bytes(r["key"])
    keys = {**cached, **{str(r["member_id"]): bytes(r["key"]) for r in rows}}
    if len(keys) < len(wanted):
        # Another transaction created a key between our snapshot and our insert.
        rows = await db.fetch(READ_KEYS_SQL, org, wanted)
        keys = {**cached, **{str(r["member_id"]): bytes(r["key"]) for r in rows}}
    return keys


def forget(member_id: uuid.UUID) -> None:
    """Drop this process's sealing copy of the member's key (their erasure)."""
    _SEALING.pop((str(db.current_org()), str(member_id)), None)


@dataclass(frozen=True, slots=True)
class SealedEvent:
    actor_display: str
    client_addr: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def seal_events(
    actor: Actor, action: str, target_type: str,
    events: Sequence[tuple[object, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> list[SealedEvent]:
    """Each ``(target id, before, after)`` (JSON values) as stored: personal fields sealed
    with the keys of the members they are about, all keys fetched in one statement."""
    all_but_listed = action.startswith("member.scim")
    subjects = [
        _needed(subjects_of(actor, target_type, t, b, a), b, a, all_but_listed)
        for t, b, a in events
    ]
    needed = {s.actor for s in subjects if s.actor} | {s.subject for s in subjects if s.subject}
    keys = await member_keys(needed, create=True) if needed else {}
    org = str(db.current_org())
    sealed: list[SealedEvent] = []
    for (_, before, after), who in zip(events, subjects, strict=True):
        display, addr = actor.display, actor.client_addr
        if who.actor and who.actor in keys:
            key = keys[who.actor]
            display = seal(key, org, who.actor, display)
            addr = None if addr is None else seal(key, org, who.actor, addr)
        if who.subject and who.subject in keys:
            key = keys[who.subject]
            before = seal_snapshot(before, key, org, who.subject, all_but_listed=all_but_listed)
            after = seal_snapshot(after, key, org, who.subject, all_but_listed=all_but_listed)
        sealed.append(SealedEvent(display, addr, None if before is None else dict(before),
                                  None if after is None else dict(after)))
    return sealed


# --- reading ------------------------------------------------------------------------------


def _members_in(value: Any, found: set[str]) -> None:
    member = sealed_for(value)
    if member is not None:
        found.add(member)
    elif isinstance(value, Mapping):
        for v in value.values():
            _members_in(v, found)
    elif isinstance(value, list):
        for v in value:
            _members_in(v, found)


def _opened(value: Any, keys: Mapping[str, bytes], org: str) -> Any:
    member = sealed_for(value)
    if member is not None:
        return unseal(keys.get(member), org, value)
    if isinstance(value, Mapping):
        return {k: _opened(v, keys, org) for k, v in value.items()}
    if isinstance(value, list):
        return [_opened(v, keys, org) for v in value]
    return value


FIELDS = ("actor_display", "client_addr", "before", "after")


async def reveal_rows(rows: list[dict[str, Any]], fields: Sequence[str] = FIELDS) -> list[dict[str, Any]]:
    """``rows`` (audit events as dicts, JSON decoded) with sealed values opened in place;
    an erased member's values read ``[erased]`` and an erased actor ``erased member``."""
    found: set[str] = set()
    for row in rows:
        for name in fields:
            if name in row:
                _members_in(row[name], found)
    if not found:
        return rows
    keys = await member_keys(found, create=False)
    org = str(db.current_org())
    for row in rows:
        for name in fields:
            if name not in row:
                continue
            value = row[name]
            if name == "actor_display" and sealed_for(value) is not None:
                row[name] = unseal(keys.get(sealed_for(value) or ""), org, value,
                                   erased=ERASED_MEMBER)
            else:
                row[name] = _opened(value, keys, org)
    return rows
