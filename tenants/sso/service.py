"""Single sign-on through the organisation's identity provider: the connection settings,
starting a sign-in, finishing it (finding or provisioning the member), and logout.

Refusals that must leave a trace (a suspended member, a foreign email domain) are
returned as ``SignInOutcome.refusal`` after their audit event, not raised: raising
would roll the audit event back with the transaction.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants import db
from tenants.actors import Actor, ActorKind, member_as_actor
from tenants.audit import service as audit
from tenants.domains import rules as domain_rules
from tenants.domains import service as domains
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.groups.models import Group
from tenants.groups.service import add_member
from tenants.identity import changes as identity
from tenants.members.addresses import normal_email
from tenants.members.lifecycle import SIGN_IN_ALLOWED, MemberStatus, can_sign_in
from tenants.members.models import Member
from tenants.members.service import NewMember, create_member
from tenants.models_base import get_referenced, max_length_of
from tenants.organisations.models import Organisation
from tenants.secrets import SecretBox
from tenants.sessions import service as sessions
from tenants.sessions.models import AuthMethod, Session
from tenants.signins import rules as sign_in_rules
from tenants.signins import service as sign_ins
from tenants.signins.rules import Reason, member_status_reason
from tenants.sso import oidc, rules, safety
from tenants.sso.models import LoginAttempt, SeenLogoutToken, SsoConnection
from tenants.text import TextError, clean_name, counted
from tenants.units.models import Unit

log = logging.getLogger(__name__)

ATTEMPT_LIFETIME = timedelta(minutes=10)
CLAIM_NAME_MAX = 100


def connection_view(connection: SsoConnection) -> dict[str, Any]:
    """What admins may see of a connection; the client secret is never included."""
    return {
        "issuer": connection.issuer,
        "client_id": connection.client_id,
        "has_client_secret": bool(connection.client_secret_enc),
        "scopes": connection.scopes,
        "email_claim": connection.email_claim,
        "name_claim": connection.name_claim,
        "groups_claim": connection.groups_claim,
        "unit_claim": connection.unit_claim,
        "allowed_domains": connection.allowed_domains,
        "jit_provisioning": connection.jit_provisioning,
        "default_unit_id": connection.default_unit_id,
        "enabled": connection.enabled,
        "sign_out_at_provider": connection.sign_out_at_provider,
    }


async def get_connection() -> SsoConnection | None:
    return await SsoConnection.filter().first()


#: The connection fields a snapshot keeps (and a restore writes back).
SNAPSHOT_FIELDS = (
    "issuer",
    "client_id",
    "client_secret_enc",
    "scopes",
    "email_claim",
    "name_claim",
    "groups_claim",
    "unit_claim",
    "allowed_domains",
    "jit_provisioning",
    "default_unit_id",
    "enabled",
    "sign_out_at_provider",
)


def snapshot(connection: SsoConnection) -> dict[str, Any]:
    """The connection's configuration as JSON (the secret stays encrypted)."""
    view = {name: getattr(connection, name) for name in SNAPSHOT_FIELDS}
    if view["default_unit_id"] is not None:
        view["default_unit_id"] = str(view["default_unit_id"])
    return view


def _shape(connection: SsoConnection, owned: list[str]) -> safety.SignInShape:
    return safety.SignInShape(
        issuer=connection.issuer,
        client_id=connection.client_id,
        allowed=tuple(domain_rules.effective_allowed_domains(connection.allowed_domains, owned)),
        enabled=connection.enabled,
    )


def _shape_after(
    connection: SsoConnection | None, changes: dict[str, Any], owned: list[str]
) -> safety.SignInShape:
    def value(name: str, default: Any) -> Any:
        if name in changes:
            return changes[name]
        return getattr(connection, name) if connection is not None else default

    return safety.SignInShape(
        issuer=str(value("issuer", "")),
        client_id=str(value("client_id", "")),
        allowed=tuple(domain_rules.effective_allowed_domains(value("allowed_domains", []), owned)),
        enabled=bool(value("enabled", True)),
    )


#: Members able to sign in through the provider now, with why each would lose it. One who
#: keeps a password while members' password sign-in is on ($7) keeps sign-in: switching
#: the provider off said every owner was locked out when their passwords still worked,
#: and refused the undo of a broken provider. (A break-glass password is for emergencies,
#: not sign-in; it counts only as the refusal's way out, ``break_glass_owner``.)
_LOSS = """
WITH able AS (
  SELECT m.name, m.email, m.roles, m.roles ? 'owner' AS owner,
         m.roles - 'member' <> '[]'::jsonb AS admin,
         CASE WHEN EXISTS (SELECT 1 FROM local_credentials c
                            WHERE c.tenant_id = m.tenant_id AND c.member_id = m.id
                              AND $7 AND NOT c.break_glass) THEN NULL
              WHEN $6 THEN 'disabled'
              WHEN split_part(m.email, '@', 2) = ANY($4::text[]) THEN 'domain'
              WHEN $5 AND m.idp_subject IS NOT NULL THEN 'subject' END AS reason
    FROM members m
   WHERE m.tenant_id = $1 AND m.status = ANY($2::text[])
     AND split_part(m.email, '@', 2) = ANY($3::text[])
)
"""


async def count_losses(rule: safety.LossRule) -> safety.MemberCounts:
    """Count in the database who ``rule`` takes sign-in from (and list at most
    ``safety.LISTED`` admins and as many others): never a row per member in Python."""
    if not rule.anyone:
        return safety.MemberCounts()
    args = (
        db.current_org(),
        sorted(s.value for s in SIGN_IN_ALLOWED),
        list(rule.admitted),
        list(rule.losing_domains),
        rule.subjects_unlinked,
        rule.everyone,
        await _passwords_on(),
    )
    totals = await db.fetch_one(
        _LOSS
        + """
SELECT count(reason) AS losing,
       count(*) FILTER (WHERE reason = 'domain') AS by_domain,
       count(*) FILTER (WHERE reason = 'subject') AS by_subject,
       count(reason) FILTER (WHERE admin) AS admins,
       count(*) FILTER (WHERE owner) AS owners_able,
       count(reason) FILTER (WHERE owner) AS owners_losing
  FROM able""",
        *args,
    )
    assert totals is not None  # an aggregate always answers one row
    listed = await _listed(_LOSS, args)
    return safety.MemberCounts(
        losing=totals["losing"],
        losing_by_domain=totals["by_domain"],
        losing_by_subject=totals["by_subject"],
        admins_losing=totals["admins"],
        owners_able=totals["owners_able"],
        owners_losing=totals["owners_losing"],
        break_glass_owner=await _break_glass_owner(),
        listed=listed,
    )


async def _listed(able: str, args: Sequence[Any]) -> tuple[safety.LosingMember, ...]:
    """Who loses sign-in by ``able`` (a query ending in the CTE ``able`` of the members
    who can sign in now, with ``reason`` set for those who would not): at most
    ``safety.LISTED`` admins, then as many others."""
    limit = f"${len(args) + 1}"
    listing = f"""
(SELECT name, email, roles, reason FROM able WHERE reason IS NOT NULL AND admin
  ORDER BY email LIMIT {limit})
UNION ALL
(SELECT name, email, roles, reason FROM able WHERE reason IS NOT NULL AND NOT admin
  ORDER BY email LIMIT {limit})"""  # noqa: S608 - only a parameter number is formatted in
    rows = await db.fetch(
        able + listing,
        *args,
        safety.LISTED,
    )
    return tuple(
        safety.LosingMember(r["name"], r["email"], tuple(_roles(r["roles"])), r["reason"])
        for r in rows
    )


def _roles(raw: Any) -> list[str]:
    import json

    value = json.loads(raw) if isinstance(raw, str) else raw
    return [str(r) for r in value or []]


async def preview_change(changes: dict[str, Any]) -> safety.Preview:
    """Who would lose sign-in if the connection took ``changes`` (nothing changes).
    InvalidInputError naming ``issuer`` when it is not one (``rules.check_issuer``)."""
    if "issuer" in changes:
        rules.check_issuer(str(changes["issuer"]))
    connection = await get_connection()
    owned = await domains.owned_domains()
    before = _shape(connection, owned) if connection is not None else None
    rule = safety.loss_rule(before, _shape_after(connection, changes, owned))
    return safety.judge(await count_losses(rule))


def _restored(previous: dict[str, Any]) -> dict[str, Any]:
    """The changes a restore makes: the previous configuration's fields that decide who
    signs in (as ``_shape_after`` reads changes)."""
    return {
        k: previous[k]
        for k in ("issuer", "client_id", "allowed_domains", "enabled")
        if k in previous
    }


async def preview_restore() -> safety.Preview:
    """Who would lose sign-in if the previous configuration came back (nothing changes)."""
    connection = await get_connection()
    if connection is None or connection.previous_config is None:
        return safety.judge(safety.MemberCounts())
    return await preview_change(_restored(dict(connection.previous_config)))


async def preview_domain_removal(name: str) -> safety.Preview:
    """Who would lose sign-in if the organisation no longer owned ``name``."""
    connection = await get_connection()
    if connection is None:
        return safety.judge(safety.MemberCounts())
    owned = await domains.owned_domains()
    rest = [d for d in owned if d != name]
    rule = safety.loss_rule(_shape(connection, owned), _shape(connection, rest))
    return safety.judge(await count_losses(rule))


_LOCAL_ONLY = """
WITH able AS (
  SELECT m.name, m.email, m.roles, m.roles ? 'owner' AS owner,
         m.roles - 'member' <> '[]'::jsonb AS admin,
         CASE WHEN c.member_id IS NOT NULL AND NOT c.break_glass
               AND NOT ($3 AND split_part(m.email, '@', 2) = ANY($4::text[]))
              THEN 'password' END AS reason
    FROM members m
    LEFT JOIN local_credentials c ON c.tenant_id = m.tenant_id AND c.member_id = m.id
   WHERE m.tenant_id = $1 AND m.status = ANY($2::text[])
     AND (c.member_id IS NOT NULL OR ($3 AND split_part(m.email, '@', 2) = ANY($4::text[])))
)
"""


async def preview_password_sign_in_off() -> safety.Preview:
    """Who would lose sign-in if members' password sign-in were switched off: members with
    a password (not the break-glass one) whose domain the identity provider does not admit.
    Counted in the database like ``count_losses``."""
    connection = await get_connection()
    owned = await domains.owned_domains()
    shape = _shape(connection, owned) if connection is not None else None
    args = (
        db.current_org(),
        sorted(s.value for s in SIGN_IN_ALLOWED),
        bool(shape and shape.enabled and connection and await _proven(connection)),
        list(shape.allowed) if shape else [],
    )
    totals = await db.fetch_one(
        _LOCAL_ONLY
        + """
SELECT count(reason) AS losing, count(reason) FILTER (WHERE admin) AS admins,
       count(*) FILTER (WHERE owner) AS owners_able,
       count(reason) FILTER (WHERE owner) AS owners_losing
  FROM able""",
        *args,
    )
    assert totals is not None  # an aggregate always answers one row
    listed = await _listed(_LOCAL_ONLY, args)
    return safety.judge(
        safety.MemberCounts(
            losing=totals["losing"],
            admins_losing=totals["admins"],
            owners_able=totals["owners_able"],
            owners_losing=totals["owners_losing"],
            break_glass_owner=await _break_glass_owner(),
            listed=listed,
        )
    )


async def _passwords_on() -> bool:
    org = await Organisation.filter(id=db.current_org()).first()
    return bool(org and org.local_sign_in)


async def _proven(connection: SsoConnection) -> bool:
    """``safety.provider_proven`` for the organisation's connection."""
    changed_at = connection.previous_saved_at or connection.created_at
    result = connection.last_test_result or {}
    row = await db.fetch_one(
        "SELECT max(at) AS at FROM sign_ins WHERE tenant_id = $1 AND method = $2"
        " AND outcome = $3 AND idp = $4 AND at >= $5",
        db.current_org(),
        sign_in_rules.SignInMethod.SSO.value,
        sign_in_rules.SignInOutcome.SUCCEEDED.value,
        connection.issuer,
        changed_at,
    )
    return safety.provider_proven(
        changed_at=changed_at,
        last_test_ok=bool(result.get("ok")),
        last_tested_at=connection.last_tested_at,
        last_sign_in_at=row["at"] if row else None,
    )


async def _break_glass_owner() -> bool:
    glass = await db.fetch_one(
        "SELECT EXISTS (SELECT 1 FROM local_credentials c JOIN members m"
        " ON m.tenant_id = c.tenant_id AND m.id = c.member_id"
        " WHERE c.tenant_id = $1 AND c.break_glass AND m.roles ? 'owner'"
        " AND m.status = ANY($2::text[])) AS present",
        db.current_org(),
        sorted(s.value for s in SIGN_IN_ALLOWED),
    )
    return bool(glass and glass["present"])


async def set_local_sign_in(
    enabled: bool, *, actor: Actor, confirm_losing: int | None = None
) -> Organisation:
    """Switch members' password sign-in behind the safety net: switching it off is refused
    when it would lock out every owner (no break-glass owner) and needs ``confirm_losing``
    when anyone would lose sign-in."""
    from tenants.organisations import service as organisations

    org = await Organisation.filter(id=db.current_org()).select_for_update().first()
    if org is not None and org.local_sign_in and not enabled:
        preview = await preview_password_sign_in_off()
        safety.check_confirmed(preview, confirm_losing, field_name="local_sign_in")
    return await organisations.set_local_sign_in(enabled, actor=actor)


async def remove_domain(name: str, *, actor: Actor, confirm_losing: int | None = None) -> None:
    """Remove a domain behind the safety net: refused when it would lock out every owner
    (no break-glass owner), and needs ``confirm_losing`` when anyone would lose sign-in."""
    await domains.get_domain(name, for_update=True)
    preview = await preview_domain_removal(name)
    safety.check_confirmed(preview, confirm_losing, field_name="domain")
    await domains.remove_domain(name, actor=actor)


def _changed_field(before: safety.SignInShape | None, after: safety.SignInShape) -> str:
    """The field a refusal names: the first of what changed that decides sign-in."""
    if before is None:
        return "issuer"
    for name in ("enabled", "issuer", "client_id"):
        if getattr(before, name) != getattr(after, name):
            return name
    return "allowed_domains"


async def save_connection(
    changes: dict[str, Any],
    *,
    box: SecretBox,
    actor: Actor,
    confirm_losing: int | None = None,
    now: datetime | None = None,
) -> SsoConnection:
    """Create or change the organisation's connection. ``client_secret`` is encrypted; an
    empty or absent one keeps the stored secret.

    The safety net: a change that takes sign-in from every owner is refused unless an
    owner has a break-glass password; one that takes it from anyone needs
    ``confirm_losing`` equal to their count. The configuration before the change is kept
    for ``restore_previous``. InvalidInputError naming ``issuer`` when it is not an
    https:// URL (``rules.check_issuer``)."""
    if "issuer" in changes:
        rules.check_issuer(str(changes["issuer"]))
    connection = await SsoConnection.filter().select_for_update().first()
    before = connection_view(connection) if connection else None
    secret = changes.pop("client_secret", None)
    if changes.get("default_unit_id") is not None:
        await get_referenced(Unit, changes["default_unit_id"], "unit", field="default_unit_id")
    if connection is None:
        for required in ("issuer", "client_id"):
            if not changes.get(required):
                raise InvalidInputError(
                    f"{required} is required for a new connection",
                    fields=[FieldProblem(required, "is required")],
                )
        connection = SsoConnection(tenant_id=db.current_org(), **changes)
        previous = None
    else:
        previous = snapshot(connection)
        owned = await domains.owned_domains()
        shape_before = _shape(connection, owned)
        shape_after = _shape_after(connection, changes, owned)
        preview = safety.judge(await count_losses(safety.loss_rule(shape_before, shape_after)))
        safety.check_confirmed(
            preview, confirm_losing, field_name=_changed_field(shape_before, shape_after)
        )
        for key, value in changes.items():
            setattr(connection, key, value)
        await _unlink_subjects(shape_before, shape_after, connection, actor=actor)
        await _forget_id_tokens(was_on=bool(previous["sign_out_at_provider"]), now=connection)
    if secret:
        connection.client_secret_enc = box.encrypt(secret)
    after = connection_view(connection)
    old, new = audit.changed_fields(before or {}, after)
    if before is not None and not new and not secret:
        return connection
    if previous is not None:
        connection.previous_config = previous
        connection.previous_saved_at = now or datetime.now(UTC)
    await connection.save()
    if secret:
        new["client_secret"] = "(changed)"  # noqa: S105 - a marker, not the secret
    await audit.record(
        "sso.connection_saved",
        "sso_connection",
        connection.id,
        actor=actor,
        before=old if before else None,
        after=new,
    )
    await identity.organisation_changed("sso_connection")
    return connection


async def _forget_id_tokens(*, was_on: bool, now: SsoConnection) -> None:
    """Sessions keep their ID tokens only for signing out at the provider: once that is
    switched off, the tokens kept for it go."""
    if was_on and not now.sign_out_at_provider:
        await Session.filter(idp_id_token_enc__not_isnull=True).update(idp_id_token_enc=None)


async def _unlink_subjects(
    before: safety.SignInShape,
    after: safety.SignInShape,
    connection: SsoConnection,
    *,
    actor: Actor,
) -> int:
    """Forget every member's link to the provider when its issuer or client changes.

    A subject is unique only within its issuer (OIDC Core §2, §5.7), and a pairwise one
    within its client too: kept, a link would let the person the new provider happens to
    call ``user-1`` sign in as the member the old one called that (found by a probe of a
    provider change). Unlinked, each member links again at their first sign-in through
    the new provider, by an email address it vouches for, as on their very first; the
    change's preview counted them as losing sign-in, which is how it stays for anyone the
    new provider does not vouch for. One audited event says how many links went."""
    if (before.issuer, before.client_id) == (after.issuer, after.client_id):
        return 0
    unlinked = await Member.filter(idp_subject__not_isnull=True).update(
        idp_subject=None, updated_at=datetime.now(UTC)
    )
    # The sessions the old provider opened go on, but its subjects and session ids no
    # longer name them: a logout token of the new provider for the same ``sub`` ended the
    # session the old one had opened for someone else. Their ID tokens are the old
    # provider's, no hint to the new one's sign-out.
    await Session.filter(idp_subject__not_isnull=True).update(
        idp_subject=None, idp_sid=None, idp_id_token_enc=None
    )
    if unlinked:
        await audit.record(
            "sso.subjects_unlinked",
            "sso_connection",
            connection.id,
            actor=actor,
            before={"issuer": before.issuer, "client_id": before.client_id},
            after={"issuer": after.issuer, "client_id": after.client_id, "members": unlinked},
        )
    return unlinked


async def restore_previous(
    *, actor: Actor, confirm_losing: int | None = None, now: datetime | None = None
) -> SsoConnection:
    """Put back the configuration the last change replaced, within 24 hours of it (one
    step, audited; the restored-from configuration is not kept, so it cannot ping-pong).
    The safety net of a change holds for it too: refused when it locks out every owner,
    and ``confirm_losing`` is the count of members it takes sign-in from (a restore that
    switched the provider off took it from 159 members unasked)."""
    connection = await SsoConnection.filter().select_for_update().first()
    if connection is None:
        raise NotFoundError("no identity provider is configured yet")
    if connection.previous_config is None:
        safety.check_restorable(None, now or datetime.now(UTC))
    safety.check_restorable(connection.previous_saved_at, now or datetime.now(UTC))
    owned = await domains.owned_domains()
    shape_before = _shape(connection, owned)
    shape_after = _shape_after(connection, _restored(dict(connection.previous_config or {})), owned)
    preview = safety.judge(await count_losses(safety.loss_rule(shape_before, shape_after)))
    safety.check_confirmed(
        preview, confirm_losing, field_name=_changed_field(shape_before, shape_after)
    )
    before = connection_view(connection)
    previous = dict(connection.previous_config or {})
    for name in SNAPSHOT_FIELDS:
        if name in previous:
            value = previous[name]
            if name == "default_unit_id" and value is not None:
                value = uuid.UUID(str(value))
            setattr(connection, name, value)
    connection.previous_config = None
    connection.previous_saved_at = None
    await connection.save()
    await _unlink_subjects(shape_before, shape_after, connection, actor=actor)
    await _forget_id_tokens(was_on=bool(before["sign_out_at_provider"]), now=connection)
    old, new = audit.changed_fields(before, connection_view(connection))
    await audit.record(
        "sso.connection_restored",
        "sso_connection",
        connection.id,
        actor=actor,
        before=old,
        after=new,
    )
    await identity.organisation_changed("sso_connection")
    return connection


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    ok: bool
    steps: list[tuple[str, bool, str]]


async def test_connection(rp: oidc.RelyingParty, *, actor: Actor) -> ConnectionTest:
    """Fetch discovery and JWKS fresh and say plainly what works and what does not."""
    connection = await get_connection()
    if connection is None:
        raise NotFoundError("no identity provider is configured yet")
    steps: list[tuple[str, bool, str]] = []
    try:
        metadata = await rp.metadata(connection.issuer, fresh=True)
        steps.append(
            (
                "discovery",
                True,
                f"found at {connection.issuer.rstrip('/')}/.well-known/openid-configuration",
            )
        )
        keys = await rp.keys(metadata, fresh=True)
        steps.append(
            ("keys", True, f"{counted(len(keys.keys), 'signing key')} at {metadata.jwks_uri}")
        )
        if not metadata.userinfo_endpoint:
            steps.append(
                ("userinfo", True, "no userinfo endpoint: claims must come in the ID token")
            )
        if not connection.client_secret_enc:
            steps.append(("client secret", False, "no client secret is stored"))
    except oidc.SignInError as exc:
        steps.append(("identity provider", False, exc.message))
    ok = all(step[1] for step in steps)
    connection.last_tested_at = datetime.now(UTC)
    connection.last_test_result = {"ok": ok, "steps": [list(s) for s in steps]}
    await connection.save(update_fields=["last_tested_at", "last_test_result", "updated_at"])
    await audit.record(
        "sso.connection_tested", "sso_connection", connection.id, actor=actor, after={"ok": ok}
    )
    return ConnectionTest(ok, steps)


def browser_binding(browser_id: str) -> str:
    return hashlib.sha256(browser_id.encode()).hexdigest()


async def begin_sign_in(
    rp: oidc.RelyingParty, *, redirect_uri: str, browser_id: str, return_to: str
) -> str:
    """Record a login attempt and return the identity provider's authorization URL."""
    connection = await get_connection()
    if connection is None or not connection.enabled:
        raise oidc.SignInError(
            "this organisation has no identity provider for sign-in", Reason.SSO_NOT_CONFIGURED
        )
    metadata = await rp.metadata(connection.issuer)
    request = oidc.new_authorization_request(
        metadata,
        client_id=connection.client_id,
        redirect_uri=redirect_uri,
        scopes=connection.scopes,
    )
    await LoginAttempt.filter(created_at__lt=datetime.now(UTC) - timedelta(days=1)).delete()
    await LoginAttempt.create(
        tenant_id=db.current_org(),
        state=request.state,
        nonce=request.nonce,
        code_verifier=request.code_verifier,
        browser_binding=browser_binding(browser_id),
        return_to=return_to[:500],
        issuer=connection.issuer,
        client_id=connection.client_id,
    )
    return request.url


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    token: sessions.SessionToken | None
    member: Member | None
    #: Why the person may not sign in, in words for them; None when they signed in.
    refusal: str | None
    return_to: str = ""
    #: The refusal's stable code (the sign-in log's reason).
    reason: Reason | None = None
    email: str | None = None
    subject: str | None = None
    #: The organisation, for the browser's session cookie.
    org_slug: str = ""
    org_name: str = ""
    #: The sign-in log's entry is written (with the session); else the caller writes it.
    logged: bool = False


def _claim(claims: dict[str, Any], name: str | None) -> Any:
    return claims.get(name) if name else None


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A consumed login attempt and the connection it was made with, for the callback."""

    nonce: str
    code_verifier: str
    browser_binding: str
    created_at: datetime
    return_to: str
    issuer: str
    client_id: str
    client_secret: str
    connection_id: uuid.UUID
    #: Claims the sign-in needs; when the ID token carries them all, userinfo is skipped.
    wanted_claims: tuple[str, ...] = ()
    #: The connection's email claim when the attempt was consumed (``admit`` looks the
    #: member up by it).
    email_claim: str = "email"


def wanted_claims(
    email_claim: str, name_claim: str, groups_claim: str | None, unit_claim: str | None
) -> tuple[str, ...]:
    """The claims a sign-in reads, by the connection's claim names."""
    names = [email_claim, name_claim, groups_claim, unit_claim]
    if email_claim == "email":
        names.append("email_verified")
    return tuple(n for n in names if n)


#: The attempt marked used and the connection it needs, in one statement. ``used_at IS
#: NULL`` makes the update the replay guard: of two callbacks with one state, the second
#: waits for the first's row lock, then finds the attempt used and updates nothing.
CONSUME_SQL = """
WITH used AS (
  UPDATE login_attempts SET used_at = $3
   WHERE tenant_id = $1 AND state = $2 AND used_at IS NULL AND browser_binding = $4
  RETURNING nonce, code_verifier, browser_binding, created_at, return_to,
            issuer AS started_issuer, client_id AS started_client_id
)
SELECT u.nonce, u.code_verifier, u.browser_binding, u.created_at, u.return_to,
       u.started_issuer, u.started_client_id,
       c.id AS connection_id, c.enabled, c.issuer, c.client_id, c.client_secret_enc,
       c.email_claim, c.name_claim, c.groups_claim, c.unit_claim
  FROM used u LEFT JOIN sso_connections c ON c.tenant_id = $1
"""


async def consume_login_attempt(state: str, *, box: SecretBox, browser_id: str) -> PendingSignIn:
    """Mark the attempt for ``state`` used (in its own short transaction, so a failure
    later cannot un-use it) and return what the callback needs.

    Raises SignInError when the state is unknown or was already used (a replay), when it
    was started in another browser (left unused: someone else holding the callback's
    address cannot spend the sign-in of the browser that started it), or the
    organisation's connection is gone or off (then the transaction must roll back, which
    leaves the attempt unused, as before its callback).
    """
    org = db.current_org()
    _, rows = await db.connection().execute_query(
        CONSUME_SQL, [org, state, datetime.now(UTC), browser_binding(browser_id)]
    )
    if not rows:
        seen = await db.fetch_one(
            "SELECT used_at FROM login_attempts WHERE tenant_id = $1 AND state = $2", org, state
        )
        if seen is None:
            raise oidc.SignInError(
                "this sign-in link is unknown or has expired; start again", Reason.STATE_UNKNOWN
            )
        if seen["used_at"] is None:
            raise oidc.SignInError(
                "the sign-in was started in another browser; start again here",
                Reason.BROWSER_MISMATCH,
            )
        raise oidc.SignInError(
            "this sign-in was already completed (replayed state); start again",
            Reason.STATE_REPLAYED,
        )
    row = rows[0]
    if row["connection_id"] is None or not row["enabled"]:
        raise oidc.SignInError(
            "this organisation has no identity provider for sign-in", Reason.SSO_NOT_CONFIGURED
        )
    if row["started_issuer"] is not None and (
        row["started_issuer"] != row["issuer"] or row["started_client_id"] != row["client_id"]
    ):
        # Nothing of this sign-in (its code, the verifier, a client secret) goes anywhere:
        # the code was issued by and for the provider the browser was sent to.
        raise oidc.SignInError(
            "the organisation's identity provider changed while you were signing in; start again",
            Reason.ISSUER_MISMATCH,
        )
    secret = box.decrypt(row["client_secret_enc"]) if row["client_secret_enc"] else ""
    return PendingSignIn(
        nonce=row["nonce"],
        code_verifier=row["code_verifier"],
        browser_binding=row["browser_binding"],
        created_at=row["created_at"],
        return_to=row["return_to"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        client_secret=secret,
        connection_id=row["connection_id"],
        wanted_claims=wanted_claims(
            row["email_claim"], row["name_claim"], row["groups_claim"], row["unit_claim"]
        ),
        email_claim=row["email_claim"],
    )


#: The longest a sign-in's callback waits on the identity provider, all calls together.
CALLBACK_SECONDS = 30


@dataclass(frozen=True, slots=True)
class VerifiedSignIn:
    """What a callback proved: the person's claims and the ID token that carried them (the
    ``id_token_hint`` when the person later signs out at the provider too)."""

    claims: dict[str, Any]
    id_token: str


async def verify_callback(
    rp: oidc.RelyingParty,
    pending: PendingSignIn,
    *,
    code: str,
    iss: str | None,
    redirect_uri: str,
    browser_id: str,
) -> VerifiedSignIn:
    """Exchange the code and validate the ID token; the person's claims, merged with
    userinfo when the ID token lacks them, and the ID token. Runs outside any transaction:
    it waits on the identity provider, for CALLBACK_SECONDS at most in all (each call is
    capped on its own, but a provider slow at each of discovery, the token, the keys and
    userinfo would hold the browser for minutes). Raises SignInError for every protocol
    failure."""
    try:
        async with asyncio.timeout(CALLBACK_SECONDS):
            if datetime.now(UTC) - pending.created_at > ATTEMPT_LIFETIME:
                raise oidc.SignInError(
                    "the sign-in took too long; start again", Reason.SIGN_IN_EXPIRED
                )
            if not _same(pending.browser_binding, browser_binding(browser_id)):
                raise oidc.SignInError(
                    "the sign-in was started in another browser; start again here",
                    Reason.BROWSER_MISMATCH,
                )
            metadata = await rp.metadata(pending.issuer)
            if iss is not None and iss != metadata.issuer:
                # RFC 9207: the authorization response names its issuer; a mix-up attack shows here.
                raise oidc.SignInError(
                    "the answer came from another identity provider (iss)", Reason.ISSUER_MISMATCH
                )
            if iss is None and metadata.iss_in_response:
                # RFC 9207 §2.4: a provider that says it names itself in every response,
                # answering without its name, is not the provider (or not its answer).
                raise oidc.SignInError(
                    "the answer does not name its identity provider (iss), which this provider"
                    " always does",
                    Reason.ISSUER_MISMATCH,
                )
            tokens = await rp.exchange_code(
                metadata,
                client_id=pending.client_id,
                client_secret=pending.client_secret,
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=pending.code_verifier,
            )
            id_token = tokens["id_token"]
            keys = await rp.keys_for(metadata, id_token)
            claims = oidc.validate_id_token(
                id_token,
                keys,
                issuer=metadata.issuer,
                client_id=pending.client_id,
                nonce=pending.nonce,
            )
            try:
                complete = await _completed(
                    rp, metadata, pending, claims, tokens.get("access_token")
                )
                return VerifiedSignIn(complete, id_token)
            except oidc.SignInError as exc:
                exc.subject, exc.email = claims["sub"], _email_in(claims, pending.email_claim)
                raise
    except TimeoutError:
        raise oidc.SignInError(
            f"the identity provider did not finish answering within {CALLBACK_SECONDS} seconds;"
            " try again",
            Reason.IDP_UNREACHABLE,
        ) from None


async def _completed(
    rp: oidc.RelyingParty,
    metadata: oidc.ProviderMetadata,
    pending: PendingSignIn,
    claims: dict[str, Any],
    access_token: Any,
) -> dict[str, Any]:
    """The validated ID token's claims, merged with userinfo when they lack some the
    sign-in reads."""
    complete = all(name in claims for name in pending.wanted_claims)
    if not isinstance(access_token, str) or not metadata.userinfo_endpoint or complete:
        return claims
    try:
        info = await rp.userinfo(metadata, access_token, client_id=pending.client_id)
    except oidc.SignInError as exc:
        # Userinfo only adds to the ID token. Entra's is on Microsoft Graph and answers 401
        # to a token for another resource, and its ID tokens never say email_verified:
        # when the ID token names the person's address, the sign-in goes on without it
        # (groups it would have added are not added).
        if _email_in(claims, pending.email_claim) is None:
            raise
        log.info("userinfo skipped for %s: %s", pending.issuer, exc.message)
        return claims
    if info.get("sub") != claims["sub"]:
        raise oidc.SignInError(
            "the userinfo answer is about another person (sub)", Reason.USERINFO_SUBJECT_MISMATCH
        )
    oidc.check_storable(info, "userinfo answer")
    return {**info, **claims}


@dataclass(frozen=True, slots=True)
class SignInSettings:
    """What admitting a person reads of the organisation's connection."""

    issuer: str
    email_claim: str
    name_claim: str
    groups_claim: str | None
    unit_claim: str | None
    allowed_domains: list[str]
    jit_provisioning: bool
    default_unit_id: uuid.UUID | None
    sign_out_at_provider: bool = False


@functools.cache
def _admit_sql() -> str:
    """Everything a sign-in decides on, in one statement: the connection, the
    organisation's name and slug, its proven domains, and the member the subject names,
    else the member with the email address (``$3``, read from the claim ``$5``: when the
    connection's email claim is no longer ``$5`` the caller looks again). Built at first
    use, when the ORM knows every column of ``members``."""
    columns = ", ".join(f'm."{c}" AS "m_{c}"' for c in Member._meta.fields_db_projection.values())
    return f"""
SELECT c.enabled, c.issuer, c.client_id, c.email_claim, c.name_claim, c.groups_claim, c.unit_claim,
       c.allowed_domains, c.jit_provisioning, c.default_unit_id, c.sign_out_at_provider,
       o.name AS org_name, o.slug AS org_slug,
       ARRAY(SELECT d.name FROM domains d WHERE d.tenant_id = $1 AND d.status = ANY($4::text[])
              ORDER BY d.name) AS owned,
       m.by_email, {columns}
  FROM organisations o
  LEFT JOIN sso_connections c ON c.tenant_id = o.id
  LEFT JOIN LATERAL (
    (SELECT s.*, false AS by_email FROM members s WHERE s.tenant_id = $1 AND s.idp_subject = $2
      LIMIT 1)
    UNION ALL
    (SELECT e.*, true FROM members e
      WHERE e.tenant_id = $1 AND e.email = $3 AND c.email_claim = $5 LIMIT 1)
    ORDER BY by_email LIMIT 1
  ) m ON true
 WHERE o.id = $1
"""  # noqa: S608 - only the model's own column names are formatted in


def _email_in(claims: dict[str, Any], claim: str | None) -> str | None:
    """The address the claim gives, in the normal form members' addresses are kept in (so a
    decomposed "é" finds the member stored composed); None when it is not one address."""
    value = _claim(claims, claim)
    return normal_email(value.strip()) if isinstance(value, str) else None


async def admit(
    claims: dict[str, Any],
    *,
    return_to: str,
    actor: Actor,
    user_agent: str | None = None,
    email_claim: str = "email",
    sign_in: sign_ins.SignInAttempt | None = None,
    started_with: tuple[str, str] | None = None,
    id_token_hint: str | None = None,
) -> SignInOutcome:
    """Find (or provision) the member the validated claims name and open their session;
    an audited refusal when they may not sign in. ``email_claim`` is the claim the
    connection named when the sign-in began (``PendingSignIn.email_claim``): the member
    is looked up by it in the same statement as the rest, and again if the connection
    has changed since. The outcome names the organisation for the browser's cookie.
    ``sign_in`` (what the request tells of the attempt): when the member signs in, its log
    entry is written with the session (``SignInOutcome.logged``). ``started_with``: the
    issuer and client the sign-in began with; SignInError when the connection has changed
    since (the claims are the old provider's). ``id_token_hint``: the ID token, encrypted by
    the caller (``tenants.secrets``), kept with the session only while the organisation
    signs out at its provider too (RP-Initiated Logout's hint)."""
    subject = str(claims["sub"])
    hinted = _email_in(claims, email_claim)
    rows = await db.fetch(
        _admit_sql(),
        db.current_org(),
        subject,
        hinted or None,
        sorted(s.value for s in domain_rules.OWNED),
        email_claim,
    )
    row = rows[0] if rows else None
    if row is None or row["issuer"] is None or not row["enabled"]:
        raise oidc.SignInError(
            "this organisation has no identity provider for sign-in", Reason.SSO_NOT_CONFIGURED
        )
    if started_with is not None and started_with != (row["issuer"], row["client_id"]):
        # The connection changed while the provider answered (the callback waits on it
        # outside any transaction): the claims are the old provider's, whose subjects the
        # change unlinked. Admitted now, they would link a member to the old provider's
        # subject under the new one (a probe did, by having its token endpoint stall).
        raise oidc.SignInError(
            "the organisation's identity provider changed while you were signing in; start again",
            Reason.ISSUER_MISMATCH,
        )
    settings = SignInSettings(
        issuer=row["issuer"],
        email_claim=row["email_claim"],
        name_claim=row["name_claim"],
        groups_claim=row["groups_claim"],
        unit_claim=row["unit_claim"],
        allowed_domains=_json_list(row["allowed_domains"]),
        jit_provisioning=row["jit_provisioning"],
        default_unit_id=row["default_unit_id"],
        sign_out_at_provider=row["sign_out_at_provider"],
    )
    member: Member | None = None
    matched_by_email = False
    if row["m_id"] is not None:
        member = Member._init_from_db(
            **{c: row[f"m_{c}"] for c in Member._meta.fields_db_projection.values()}
        )
        matched_by_email = bool(row["by_email"])
    email = _email_in(claims, settings.email_claim)
    if member is None and email and settings.email_claim != email_claim:
        # The connection's email claim changed since the sign-in began.
        member = await Member.filter(email=email).first()
        matched_by_email = member is not None
    outcome = await _admit(
        settings,
        claims,
        member=member,
        matched_by_email=matched_by_email,
        email=email,
        org_name=row["org_name"],
        owned=list(row["owned"]),
        actor=actor,
        return_to=return_to,
        user_agent=user_agent,
        sign_in=sign_in,
        id_token_hint=id_token_hint if settings.sign_out_at_provider else None,
    )
    return replace(outcome, org_slug=row["org_slug"], org_name=row["org_name"])


def _json_list(raw: Any) -> list[str]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return [str(v) for v in value or []]


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


async def _admit(
    connection: SignInSettings,
    claims: dict[str, Any],
    *,
    member: Member | None,
    matched_by_email: bool,
    email: str | None,
    org_name: str,
    owned: list[str],
    actor: Actor,
    return_to: str,
    user_agent: str | None,
    sign_in: sign_ins.SignInAttempt | None,
    id_token_hint: str | None = None,
) -> SignInOutcome:
    subject = str(claims["sub"])
    name_value = _claim(claims, connection.name_claim)
    allowed = domain_rules.effective_allowed_domains(connection.allowed_domains, owned)
    domain = email.rsplit("@", 1)[-1] if email and "@" in email else None
    target = member.id if member else subject

    async def refuse(reason: str, code: Reason) -> SignInOutcome:
        await audit.record(
            "session.sign_in_refused",
            "member",
            target,
            actor=actor,
            after={"reason": code.value, "email": email, "idp_subject": subject},
        )
        return SignInOutcome(None, member, reason, reason=code, email=email, subject=subject)

    if email is None:
        return await refuse(
            "your identity provider did not tell us your email address", Reason.NO_EMAIL
        )
    if domain not in allowed:
        return await refuse(
            f"accounts from {domain} cannot sign in to {org_name}", Reason.DOMAIN_NOT_ALLOWED
        )
    hosted = rules.hosted_domain_problem(connection.issuer, claims, allowed)
    if hosted is not None:
        return await refuse(f"{hosted}; it cannot sign in to {org_name}", Reason.DOMAIN_NOT_ALLOWED)
    # An email address only identifies a person the first time (linking or provisioning),
    # and only if the identity provider vouches for it: otherwise another identity at the
    # provider that carries (or made up) a member's address would sign in as that member.
    if (
        (member is None or matched_by_email)
        and connection.email_claim == "email"
        and rules.email_vouched_for(claims) is False
    ):
        return await refuse(
            "your identity provider has not verified your email address", Reason.EMAIL_NOT_VERIFIED
        )
    if matched_by_email and member is not None and member.idp_subject not in (None, subject):
        return await refuse(
            f"this {org_name} account is linked to another identity at your identity provider;"
            " ask your administrator",
            Reason.SUBJECT_MISMATCH,
        )
    if member is None:
        if not connection.jit_provisioning:
            return await refuse(
                f"you have no account at {org_name}; ask your administrator", Reason.UNKNOWN_MEMBER
            )
        unit_id = await _unit_for(connection, claims)
        member = await create_member(
            NewMember(
                email=email,
                name=_provisioned_name(name_value, email),
                unit_id=unit_id,
                status=MemberStatus.ACTIVE,
                idp_subject=subject,
            ),
            actor=Actor(
                ActorKind.IDENTITY_PROVIDER,
                connection.issuer,
                "just-in-time provisioning",
                request_id=actor.request_id,
                client_addr=actor.client_addr,
            ),
        )
    if not can_sign_in(member.status):
        return await refuse(
            f"your account is {member.status.value}; it cannot sign in",
            member_status_reason(member.status.value),
        )
    await _join_claimed_groups(connection, claims, member, actor=actor)
    if member.idp_subject is None:
        await Member.filter(id=member.id).update(idp_subject=subject)
        await audit.record(
            "member.updated",
            "member",
            member.id,
            actor=actor,
            before={"idp_subject": None},
            after={"idp_subject": subject},
        )
    if member.status == MemberStatus.INVITED:
        member.status = MemberStatus.ACTIVE
        await Member.filter(id=member.id).update(
            status=MemberStatus.ACTIVE, status_changed_at=datetime.now(UTC)
        )
        await audit.record(
            "member.activate",
            "member",
            member.id,
            actor=actor,
            before={"status": "invited"},
            after={"status": "active", "reason": "first sign-in"},
        )
    member_actor = member_as_actor(member.id, member.name, member.email, via=actor)
    token = await sessions.create_session(
        member,
        AuthMethod.OIDC,
        actor=member_actor,
        idp_sid=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
        idp_subject=subject,
        idp_id_token_enc=id_token_hint,
        user_agent=user_agent,
        sign_in=replace(
            sign_in,
            email=email,
            idp_subject=subject,
            member_id=member.id,
            detail=rules.groups_overage(claims, connection.groups_claim),
        )
        if sign_in is not None
        else None,
    )
    return SignInOutcome(
        token, member, None, return_to, email=email, subject=subject, logged=sign_in is not None
    )


#: The longest member, group or unit name (their columns).
NAME_MAX = max_length_of(Member, "name")


def _provisioned_name(claimed: Any, email: str) -> str:
    """A just-in-time member's name from the provider's claim, under the rules a name
    typed into the console or the API meets (``tenants.text``: no control or
    bidirectional characters, NFC), cut to the column's length; the address's local part
    when the claim is missing, not text, or not a name."""
    fallback = email.split("@")[0][:NAME_MAX]
    if not isinstance(claimed, str) or not claimed.strip():
        return fallback
    try:
        return clean_name(claimed.strip())[:NAME_MAX].strip() or fallback
    except TextError:
        return fallback


async def _join_claimed_groups(
    connection: SignInSettings, claims: dict[str, Any], member: Member, *, actor: Actor
) -> None:
    """Add the member to the organisation's groups named in the mapped groups claim.

    Only additions: a group membership set by an admin is never removed by a sign-in,
    because nothing marks which memberships the identity provider owns (SCIM does).
    """
    wanted = rules.claimed_group_names(_claim(claims, connection.groups_claim), NAME_MAX)
    if not wanted:
        return
    for group in await Group.filter(name__in=sorted(wanted)):
        await add_member(group.id, member.id, actor=actor, by=None)


async def _unit_for(connection: SignInSettings, claims: dict[str, Any]) -> uuid.UUID:
    """The unit for a just-in-time member: the unit named by the mapped claim, else the
    connection's default unit, else the root."""
    value = _claim(claims, connection.unit_claim)
    if isinstance(value, str) and 0 < len(value.strip()) <= NAME_MAX:
        unit = await Unit.filter(name=value.strip()).first()
        if unit is not None:
            return unit.id
    if connection.default_unit_id is not None:
        return connection.default_unit_id
    root = await Unit.get(parent_id=None)
    return root.id


@dataclass(frozen=True, slots=True)
class ProviderSignOut:
    """Where a session's sign-out goes on to: the provider that opened it, and the ID
    token it began with (encrypted; None when not kept)."""

    issuer: str
    client_id: str
    id_token_enc: str | None


async def provider_sign_out(session: Session) -> ProviderSignOut | None:
    """For a session that is signing out: the provider to sign out at too, when the
    organisation asks for it and the session came from that provider (a password or
    break-glass session, or one the old provider opened before a change, has nothing
    to end there)."""
    if session.auth_method is not AuthMethod.OIDC or session.idp_subject is None:
        return None
    connection = await get_connection()
    if connection is None or not connection.enabled or not connection.sign_out_at_provider:
        return None
    return ProviderSignOut(connection.issuer, connection.client_id, session.idp_id_token_enc)


async def backchannel_logout(rp: oidc.RelyingParty, logout_token: str, *, actor: Actor) -> int:
    """End the sessions a valid logout token names; SignInError for an invalid one."""
    connection = await get_connection()
    # A connection switched off still ends the sessions it started (the provider's logout
    # is honoured until they are gone).
    if connection is None:
        raise oidc.SignInError(
            "this organisation has no identity provider", Reason.SSO_NOT_CONFIGURED
        )
    metadata = await rp.metadata(connection.issuer)
    keys = await rp.keys_for(metadata, logout_token)
    claims = oidc.validate_logout_token(
        logout_token, keys, issuer=metadata.issuer, client_id=connection.client_id
    )
    await _remember_logout_token(claims.jti)
    return await sessions.end_idp_sessions(sid=claims.sid, subject=claims.subject, actor=actor)


async def _remember_logout_token(jti: str) -> None:
    """Refuse a logout token seen before; remember this one for as long as its issue time
    keeps it acceptable (older ones fail the ``iat`` check anyway)."""
    now = datetime.now(UTC)
    keep = timedelta(seconds=oidc.MAX_AGE_SECONDS + 2 * oidc.LEEWAY_SECONDS)
    await SeenLogoutToken.filter(expires_at__lt=now).delete()
    row = await db.fetch_one(
        "WITH remembered AS (INSERT INTO seen_logout_tokens "
        "(id, tenant_id, jti, expires_at, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, $2, $3, now(), now()) ON CONFLICT (tenant_id, jti) DO NOTHING "
        "RETURNING id) SELECT id FROM remembered",
        db.current_org(),
        jti[:255],
        now + keep,
    )
    if row is None:
        raise oidc.SignInError(
            "this logout token was already used (replayed jti)", Reason.LOGOUT_TOKEN_INVALID
        )


async def current_issuer() -> str | None:
    """The issuer of the organisation's identity provider, for the sign-in log."""
    connection = await get_connection()
    return connection.issuer if connection is not None else None
