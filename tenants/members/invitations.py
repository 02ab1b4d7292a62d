"""Inviting a member: an email that tells them how to sign in for the first time.

Where the organisation signs in through its identity provider, the email says so and
points at the organisation's sign-in page: the provider vouches for the person, nothing
in the email does. Where it has none, the email carries a sign-in link: signed with a key
derived from the service's secret (itsdangerous, its own salt), naming the organisation,
the member and a random id, valid for ``LINK_LIFETIME`` and usable once (the id is
remembered in ``seen_logout_tokens``, the organisation's table of one-time token ids,
until the link would have expired anyway).

The link is a credential: it signs its holder in as the member. It therefore expires
within days, works once, works only while the member may sign in, and opening it asks
for a click before it signs anyone in (mail scanners that fetch links consume nothing).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, TenantryError
from tenants.ids import OrgId
from tenants.mail import service as mail
from tenants.members.lifecycle import MemberStatus, can_sign_in
from tenants.members.models import Member
from tenants.members.roles import check_may_act_for
from tenants.models_base import get_by_id
from tenants.organisations.models import Organisation
from tenants.permissions import Permission
from tenants.sso.models import SsoConnection

#: The salt: a key derived for invitation links alone, unlike any other use of the secret.
PURPOSE = "tenantry invitation links v1"
LINK_LIFETIME = timedelta(days=7)
#: How a link's id is kept among the organisation's one-time token ids.
SEEN_PREFIX = "invitation:"


class InvitationWay(StrEnum):
    #: The email carries a one-time sign-in link (no identity provider).
    SIGN_IN_LINK = "sign_in_link"
    #: The email says to sign in through the organisation's identity provider.
    IDENTITY_PROVIDER = "identity_provider"


class LinkProblem(StrEnum):
    """Why an invitation link cannot sign anyone in (shown in plain words)."""

    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"
    CANNOT_SIGN_IN = "cannot_sign_in"


LINK_PROBLEMS: dict[LinkProblem, str] = {
    LinkProblem.INVALID: "This sign-in link is not one this service made, or it was cut short "
    "when it was copied. Open the link from the email again, or ask your administrator for "
    "a new invitation.",
    LinkProblem.EXPIRED: "This sign-in link has expired (links are valid for 7 days). Ask your "
    "administrator to send a new invitation.",
    LinkProblem.USED: "This sign-in link was already used; each link signs in once. Sign in "
    "the usual way, or ask your administrator to send a new invitation.",
    LinkProblem.CANNOT_SIGN_IN: "The account this link is for cannot sign in any more. Ask "
    "your administrator.",
}


class InvitationLinkError(TenantryError):
    """An invitation link that cannot sign anyone in; ``problem`` says why."""

    code = "invitation_link"
    title = "This sign-in link cannot be used"

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(LINK_PROBLEMS[problem])
        self.problem = problem


@dataclass(frozen=True, slots=True)
class LinkClaims:
    org_id: OrgId
    member_id: uuid.UUID
    link_id: str
    issued_at: datetime

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + LINK_LIFETIME


def _serializer(secret_key: str, issued_at: datetime | None = None) -> URLSafeTimedSerializer:
    signer: type[TimestampSigner] = TimestampSigner
    if issued_at is not None:
        stamp = int(issued_at.timestamp())
        signer = type("_SignerAt", (TimestampSigner,), {"get_timestamp": lambda self: stamp})
    return URLSafeTimedSerializer(
        secret_key,
        salt=PURPOSE,
        signer=signer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )


def make_link_token(
    secret_key: str, org_id: OrgId, member_id: uuid.UUID, *, issued_at: datetime | None = None
) -> str:
    """A new signed token for ``member_id``'s invitation link (a fresh id each time), issued
    now or at ``issued_at`` (a link made earlier: it expires LINK_LIFETIME after that)."""
    return _serializer(secret_key, issued_at).dumps(
        [org_id.hex, member_id.hex, secrets.token_urlsafe(16)]
    )


def read_link_token(secret_key: str, token: str, *, now: datetime | None = None) -> LinkClaims:
    """What a token names, when this service signed it and it has not expired.

    InvitationLinkError(INVALID) for a token it did not sign (or one altered or cut
    short), (EXPIRED) for one older than LINK_LIFETIME. Whether it was used is for
    ``sign_in_with_link`` to say.
    """
    if not token or len(token) > 400 or not token.isascii():
        raise InvitationLinkError(LinkProblem.INVALID)
    serializer = _serializer(secret_key)
    try:
        payload, issued = serializer.loads(token, max_age=None, return_timestamp=True)
    except BadSignature:
        raise InvitationLinkError(LinkProblem.INVALID) from None
    try:
        org_hex, member_hex, link_id = payload
        claims = LinkClaims(
            OrgId(uuid.UUID(hex=org_hex)), uuid.UUID(hex=member_hex), str(link_id), issued
        )
    except (TypeError, ValueError):
        raise InvitationLinkError(LinkProblem.INVALID) from None
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise InvitationLinkError(LinkProblem.EXPIRED)
    return claims


def link_path(token: str) -> str:
    return f"/invitation/{token}"


@dataclass(frozen=True, slots=True)
class Invitation:
    member: Member
    way: InvitationWay
    #: The link's expiry (SIGN_IN_LINK only).
    expires_at: datetime | None


async def _uses_identity_provider() -> bool:
    connection = await SsoConnection.filter().first()
    return connection is not None and connection.enabled


async def invite_member(
    member_id: uuid.UUID,
    *,
    secret_key: str,
    actor: Actor,
    sender: frozenset[Permission] | None = None,
) -> Invitation:
    """Queue the invitation email to ``member_id`` in the open tenant transaction and audit
    it (``member.invited``). A new link each time (earlier ones stay valid until used or
    expired). ConflictError naming ``invite`` when the member may not sign in (suspended,
    departed, purged); NotFoundError for an unknown member. ``sender``: the permissions of
    whoever sends it, who may send a link to sign in as someone only if they hold all that
    member's permissions (``roles.check_may_act_for``)."""
    member = await get_by_id(Member, member_id, "member")
    if sender is not None:
        check_may_act_for(sender, member.roles, doing="send a sign-in link to", field="invite")
    if not can_sign_in(member.status):
        raise ConflictError(
            f"{member.name} is {member.status.value} and cannot sign in: there is nothing "
            "to invite them to",
            fields=[FieldProblem("invite", f"member is {member.status.value}")],
        )
    organisation = await Organisation.get(id=db.current_org())
    context: dict[str, object] = {"member_name": member.name, "email": member.email}
    expires_at: datetime | None = None
    if await _uses_identity_provider():
        way = InvitationWay.IDENTITY_PROVIDER
        template = "invitation_sso"
        path = f"/login/{organisation.slug}?email={quote(member.email)}"
        key = f"invitation:{member.id}:{secrets.token_hex(8)}"
    else:
        way = InvitationWay.SIGN_IN_LINK
        template = "invitation_link"
        token = make_link_token(secret_key, db.current_org(), member.id)
        claims = read_link_token(secret_key, token)
        expires_at = claims.expires_at
        context["expires_on"] = expires_at.strftime("%Y-%m-%d %H:%M UTC")
        path = link_path(token)
        key = f"invitation:{member.id}:{claims.link_id}"
    await mail.send_later(
        template, to=[member.email], context={**context, "link_path": path}, key=key
    )
    await audit.record(
        "member.invited",
        "member",
        member.id,
        actor=actor,
        after={
            "way": way.value,
            "email": member.email,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return Invitation(member, way, expires_at)


async def member_for_link(claims: LinkClaims) -> Member:
    """The member a valid link names, if the link is unused and they may sign in; in the
    open tenant transaction of ``claims.org_id``. Reads only (showing the link's page)."""
    member = await Member.filter(id=claims.member_id).first()
    if member is None or not can_sign_in(member.status):
        raise InvitationLinkError(LinkProblem.CANNOT_SIGN_IN)
    if await db.fetch_one(
        "SELECT 1 AS used FROM seen_logout_tokens WHERE tenant_id = $1 AND jti = $2",
        db.current_org(),
        SEEN_PREFIX + claims.link_id,
    ):
        raise InvitationLinkError(LinkProblem.USED)
    return member


async def use_link(claims: LinkClaims, *, actor: Actor) -> Member:
    """Spend the link (once: a second use raises InvitationLinkError(USED)) and return its
    member, activated if they were invited (``member.activate``, as a first sign-in through
    the identity provider does). The caller opens the session in the same transaction, so
    a refused sign-in leaves the link unspent."""
    member = await member_for_link(claims)
    remembered = await db.fetch_one(
        # A CTE, so the driver reads the RETURNING row (a bare INSERT answers no rows here).
        "WITH remembered AS (INSERT INTO seen_logout_tokens "
        "(id, tenant_id, jti, expires_at, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, $2, $3, now(), now()) "
        "ON CONFLICT (tenant_id, jti) DO NOTHING RETURNING id) SELECT id FROM remembered",
        db.current_org(),
        SEEN_PREFIX + claims.link_id,
        claims.expires_at,
    )
    if remembered is None:
        raise InvitationLinkError(LinkProblem.USED)
    if member.status == MemberStatus.INVITED:
        member.status = MemberStatus.ACTIVE
        member.status_changed_at = datetime.now(UTC)
        await Member.filter(id=member.id).update(
            status=MemberStatus.ACTIVE, status_changed_at=member.status_changed_at
        )
        await audit.record(
            "member.activate",
            "member",
            member.id,
            actor=actor,
            before={"status": "invited"},
            after={"status": "active", "reason": "first sign-in with an invitation link"},
        )
    return member
