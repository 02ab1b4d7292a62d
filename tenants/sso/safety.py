"""The identity-change safety net (issue 18, part 4): who would lose sign-in if the
connection, the organisation's domains or the sign-in method changed, decided before
anything changes.

The rules are plain functions over dataclasses: ``loss_rule`` says which members lose
sign-in (by email domain, by a subject link to the old issuer, or everyone when sign-in
through the provider is switched off) and ``judge`` turns the counts the database
answered into the verdict (who loses, whether every owner is locked out, the count the
admin must confirm). The SQL edge (``tenants.sso.service.preview_change``) counts in the
database and lists only the first few people, admins first, so a large organisation is
never loaded into Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tenants.errors import ConflictError, FieldProblem, InvalidInputError
from tenants.text import counted

#: How long the configuration before a change can be restored in one step.
RESTORE_WINDOW = timedelta(hours=24)
#: How many admins and how many other members a preview lists by name.
LISTED = 50


@dataclass(frozen=True, slots=True)
class SignInShape:
    """What decides who can sign in through the identity provider: its identity (issuer,
    client), the email domains it effectively admits, and whether it is on."""

    issuer: str
    client_id: str
    allowed: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class LossRule:
    """Which members lose sign-in: those able to sign in now (domain in ``admitted``) whose
    domain is in ``losing_domains``, or who are linked by subject when ``subjects_unlinked``,
    or all of them when ``everyone``."""

    admitted: tuple[str, ...] = ()
    losing_domains: tuple[str, ...] = ()
    subjects_unlinked: bool = False
    everyone: bool = False

    @property
    def anyone(self) -> bool:
        return bool(self.admitted) and (
            self.everyone or self.subjects_unlinked or bool(self.losing_domains)
        )


def loss_rule(before: SignInShape | None, after: SignInShape) -> LossRule:
    """Who loses sign-in going from ``before`` to ``after``. Nobody signs in through a
    connection that does not exist or is off, so nobody can lose it. A new issuer or client
    answers other subjects: the change removes every member's link to the old one
    (``tenants.sso.service._unlink_subjects``), and each signs in again only if the new
    provider vouches for the same email address, so all of them are counted."""
    if before is None or not before.enabled or not before.allowed:
        return LossRule()
    admitted = tuple(sorted(before.allowed))
    if not after.enabled:
        return LossRule(admitted=admitted, everyone=True)
    kept = set(after.allowed)
    return LossRule(
        admitted=admitted,
        losing_domains=tuple(d for d in admitted if d not in kept),
        subjects_unlinked=(before.issuer, before.client_id) != (after.issuer, after.client_id),
    )


def provider_proven(
    *,
    changed_at: datetime,
    last_test_ok: bool,
    last_tested_at: datetime | None,
    last_sign_in_at: datetime | None,
) -> bool:
    """Whether the identity provider has shown it lets people in since its issuer or client
    last changed: a test that passed, or someone who signed in through it. Only then does
    it count as a way in when password sign-in goes off; a provider saved with a made-up
    issuer and never tried once counted, and switching passwords off locked everyone out
    without a word."""
    tested = last_test_ok and last_tested_at is not None and last_tested_at >= changed_at
    used = last_sign_in_at is not None and last_sign_in_at >= changed_at
    return tested or used


@dataclass(frozen=True, slots=True)
class LosingMember:
    name: str
    email: str
    roles: tuple[str, ...]
    #: ``domain`` (the email domain is no longer admitted), ``subject`` (linked to the old
    #: issuer or client) or ``disabled`` (sign-in through the provider is switched off).
    reason: str


@dataclass(frozen=True, slots=True)
class MemberCounts:
    """What the database counted: members able to sign in now and those who would lose it."""

    losing: int = 0
    losing_by_domain: int = 0
    losing_by_subject: int = 0
    admins_losing: int = 0
    owners_able: int = 0
    owners_losing: int = 0
    break_glass_owner: bool = False
    listed: tuple[LosingMember, ...] = ()


@dataclass(frozen=True, slots=True)
class Preview:
    losing: int
    losing_by_domain: int
    losing_by_subject: int
    admins_losing: int
    owners_losing: int
    #: Every owner who can sign in through the provider now would lose it.
    every_owner_locked_out: bool
    break_glass_owner: bool
    #: Admins first, then other members; at most ``LISTED`` of each.
    people: tuple[LosingMember, ...] = field(default=())

    @property
    def refused(self) -> bool:
        """A change that locks out every owner with no break-glass owner left is refused."""
        return self.every_owner_locked_out and not self.break_glass_owner


def is_admin(roles: tuple[str, ...] | list[str]) -> bool:
    return any(r != "member" for r in roles)


def judge(counts: MemberCounts) -> Preview:
    people = sorted(counts.listed, key=lambda p: (not is_admin(p.roles), p.email))
    return Preview(
        losing=counts.losing,
        losing_by_domain=counts.losing_by_domain,
        losing_by_subject=counts.losing_by_subject,
        admins_losing=counts.admins_losing,
        owners_losing=counts.owners_losing,
        every_owner_locked_out=counts.owners_able > 0
        and counts.owners_losing >= counts.owners_able,
        break_glass_owner=counts.break_glass_owner,
        people=tuple(people),
    )


def check_confirmed(preview: Preview, confirm_losing: int | None, *, field_name: str) -> None:
    """Refuse the change when it locks out every owner (naming ``field_name``, what
    changes), or when members lose sign-in and ``confirm_losing`` is not their count."""
    if preview.refused:
        raise ConflictError(
            f"this change of {field_name} would lock out every owner and no owner has a"
            " break-glass password; give an owner one first",
            fields=[FieldProblem(field_name, "would lock out every owner")],
        )
    if preview.losing and confirm_losing != preview.losing:
        raise InvalidInputError(
            f"{counted(preview.losing, 'member')} would lose sign-in; send confirm_losing:"
            f" {preview.losing} to go ahead",
            fields=[FieldProblem("confirm_losing", f"must be {preview.losing}")],
            extra={"losing": preview.losing},
        )


def check_restorable(saved_at: datetime | None, now: datetime) -> None:
    """The previous configuration is restorable for ``RESTORE_WINDOW`` after the change."""
    if saved_at is None:
        raise ConflictError("there is no previous configuration to restore")
    if now - saved_at > RESTORE_WINDOW:
        raise ConflictError(
            "the previous configuration was replaced more than 24 hours ago and can no"
            " longer be restored in one step"
        )
