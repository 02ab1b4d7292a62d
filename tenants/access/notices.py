"""Emails about data access: the admin who asked hears of the decision, and members hear
of access to their data where the organisation's policy says so.

Decision emails are queued in the decision's own transaction. Access emails are not
sent from a product's check (the check must stay one statement): ``AccessNotices`` queues
them in a transaction of their own right after, at most one per grant, product, category
and day (the mail key), and never for a grant whose disclosure is delayed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tenants import db
from tenants.access.models import AccessGrant
from tenants.access.policy import get_policy
from tenants.access.rules import is_disclosed
from tenants.ids import OrgId
from tenants.mail import service as mail
from tenants.members.models import Member
from tenants.products.models import Product
from tenants.units.models import Unit

log = logging.getLogger(__name__)

CATEGORY_WORDS = {
    "interaction": "interaction data",
    "diagnostic": "diagnostic data",
    "communications": "the contents of communications",
    "files": "files",
}


def in_words(categories: list[str]) -> str:
    named = [CATEGORY_WORDS.get(c, c) for c in categories]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


async def _subject_name(grant: AccessGrant) -> str:
    if grant.member_id is not None:
        member = await Member.filter(id=grant.member_id).first()
        return member.name if member else "a member"
    unit = await Unit.filter(id=grant.unit_id).first()
    return f"everyone in {unit.name}" if unit else "a unit"


async def decision_made(grant: AccessGrant, *, approved: bool, decided_by: str) -> None:
    """Queue the email telling the admin who asked about the decision (in the open
    tenant transaction, so a rolled-back decision sends nothing)."""
    admin = await Member.get(id=grant.admin_id)
    subject = await _subject_name(grant)
    link = f"/console/data-access/grants/{grant.id}"
    if approved:
        await mail.send_later(
            "grant_approved",
            to=[admin.email],
            context={
                "requester_name": admin.name,
                "subject_name": subject,
                "categories": in_words(grant.categories),
                "ends_at": f"{grant.ends_at:%Y-%m-%d %H:%M} UTC" if grant.ends_at else "",
                "approver_name": decided_by,
                "link_path": link,
            },
            key=f"grant_approved:{grant.id}",
        )
    else:
        await mail.send_later(
            "grant_denied",
            to=[admin.email],
            context={
                "requester_name": admin.name,
                "subject_name": subject,
                "denier_name": decided_by,
                "reason": grant.decision_reason or "",
                "link_path": link,
            },
            key=f"grant_denied:{grant.id}",
        )


@dataclass(frozen=True, slots=True)
class Access:
    """An allowed check, as recorded in the member's log."""

    org: OrgId
    grant_id: uuid.UUID
    member_id: uuid.UUID
    admin_id: uuid.UUID
    product_id: uuid.UUID
    category: str
    at: datetime

    @property
    def mail_key(self) -> str:
        return (
            f"access_logged:{self.grant_id}:{self.member_id}:{self.product_id}:"
            f"{self.category}:{self.at:%Y-%m-%d}"
        )


async def access_logged(access: Access) -> None:
    """Queue the member's email about ``access`` (in the open tenant transaction) when the
    grant is disclosed; the mail key makes a repeat a no-op. The caller has checked that
    the policy wants it."""
    grant = await AccessGrant.filter(id=access.grant_id).first()
    if grant is None or not is_disclosed(grant.disclosure_delayed_until, access.at):
        return
    people = {m.id: m for m in await Member.filter(id__in=[access.member_id, access.admin_id])}
    member, admin = people.get(access.member_id), people.get(access.admin_id)
    product = await Product.filter(id=access.product_id).first()
    if member is None or admin is None:
        return
    await mail.send_later(
        "access_logged",
        to=[member.email],
        context={
            "member_name": member.name,
            "admin_name": admin.name,
            "category": in_words([access.category]),
            "product_name": product.name if product else "a product",
            "purpose": grant.justification,
            "accessed_at": f"{access.at:%Y-%m-%d %H:%M} UTC",
            "link_path": "/account#who-accessed",
        },
        key=access.mail_key,
    )


class AccessNotices:
    """Queues members' access emails outside the checks' path, once per mail key per
    process (the key keeps other processes from sending it twice).

    Whether an organisation's policy wants them is remembered for ``policy_ttl`` seconds,
    so with the emails switched off a check costs nothing here; a policy change takes
    effect within that time.
    """

    def __init__(self, remember: int = 100_000, policy_ttl: float = 30.0) -> None:
        self.remember = remember
        self.policy_ttl = policy_ttl
        self._seen: set[str] = set()
        self._wanted: dict[OrgId, tuple[float, bool]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def allowed(
        self,
        org: OrgId,
        *,
        grant_id: uuid.UUID,
        member_id: uuid.UUID,
        admin_id: uuid.UUID,
        product_id: uuid.UUID,
        category: str,
    ) -> None:
        """An allowed check: queue the member's email unless the policy, as read in the
        last ``policy_ttl`` seconds, wants none (then the access is not even described:
        this runs on every allowed check)."""
        known = self._wanted.get(org)
        if known is not None and not known[1] and known[0] > time.monotonic():
            return
        access = Access(org, grant_id, member_id, admin_id, product_id, category, datetime.now(UTC))
        key = access.mail_key
        if key in self._seen:
            return
        if len(self._seen) >= self.remember:
            self._seen.clear()
        self._seen.add(key)
        # A context of its own: a check answered inside a request's tenant transaction must
        # not lend that transaction to this later one.
        task = asyncio.get_running_loop().create_task(
            self._queue(access), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _queue(self, access: Access) -> None:
        try:
            async with db.tenant_transaction(access.org):
                wanted = (await get_policy()).notify_member_per_access
                self._wanted[access.org] = (time.monotonic() + self.policy_ttl, wanted)
                if wanted:
                    await access_logged(access)
        except Exception:
            self._seen.discard(access.mail_key)
            log.exception("could not queue the access email %s", access.mail_key)

    async def settled(self) -> None:
        """Wait for the emails being queued (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
