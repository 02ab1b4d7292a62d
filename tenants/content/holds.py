"""What a member is told when items of theirs are kept beyond the usual retention because
of a legal hold: which categories of their data are kept, that a legal obligation requires
it, the organisation's member-facing text, and when the hold is next reviewed.

The explanation is built from the held items' categories (product and kind) and from what
the admin wrote *for the member* when placing the hold. The hold's reason (the matter's
name, case notes) is confidential: it lives only in the audit trail and never reaches this
module, so no page or request answer built from it can disclose it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from tenants import db
from tenants.content.models import ContentKind
from tenants.errors import FieldProblem
from tenants.text import clean_free_text

#: The legal basis the member is told; the same words the personal-data map gives for
#: keeping held items on erasure (tenants/privacy/datamap.py, content_items).
OBLIGATION = (
    "A legal obligation requires the organisation to keep these items "
    "(GDPR Art. 17(3)(b), (e)); they are not deleted while the hold lasts."
)

#: How far ahead a hold's review may be: ten years, as a departure's last day
#: (``tenants.departures.service.MAX_NOTICE_DAYS``); a date beyond is a typo (9999-12-31)
#: that would keep a member's items unreviewed for good.
MAX_REVIEW_DAYS = 3650

#: The member-facing text's limits (it is shown on a page and in an email-sized answer).
TEXT_MAX = 2000


def hold_problems(member_text: str | None, review_on: date | None, today: date) -> list[FieldProblem]:
    """Why a new hold's member-facing text and review date are refused: both are required
    (a member must be told something, and a hold must be reviewed), the text is free text
    under the project's text policy, and the review date lies in the future, at most
    MAX_REVIEW_DAYS after ``today``."""
    problems: list[FieldProblem] = []
    if member_text is None or not member_text.strip():
        problems.append(FieldProblem("member_text", "tell the member why their items are kept"))
    else:
        try:
            clean_free_text(member_text)
        except ValueError as error:
            problems.append(FieldProblem("member_text", str(error)))
        if len(member_text.strip()) > TEXT_MAX:
            problems.append(FieldProblem("member_text", f"at most {TEXT_MAX} characters"))
    if review_on is None:
        problems.append(FieldProblem("review_on", "a date to review the hold"))
    elif review_on <= today:
        problems.append(FieldProblem("review_on", "must be in the future"))
    elif review_on > (latest := today + timedelta(days=MAX_REVIEW_DAYS)):
        problems.append(FieldProblem("review_on", f"must be {latest.isoformat()} or earlier"))
    return problems


KIND_LABELS = {ContentKind.ORGANISATION: "work content", ContentKind.PERSONAL: "personal items"}


@dataclass(frozen=True, slots=True)
class HeldGroup:
    """Held items of one member that share product, kind, text and review date."""

    product: str
    kind: ContentKind
    count: int
    member_text: str | None
    review_on: date | None


@dataclass(frozen=True, slots=True)
class KeptCategory:
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class HoldExplanation:
    """What to tell the member; no field carries the matter's confidential details."""

    categories: tuple[KeptCategory, ...]
    obligation: str
    #: The organisation's member-facing texts, each once, in a stable order.
    texts: tuple[str, ...]
    #: The earliest review date among the holds; None when no hold has one yet.
    review_on: date | None
    #: Some held items have no review date (a hold placed before review dates existed).
    review_unknown: bool

    @property
    def count(self) -> int:
        return sum(c.count for c in self.categories)

    def as_text(self) -> str:
        """The explanation as plain text, for the answer to a privacy request."""
        kept = "; ".join(f"{c.label} ({c.count})" for c in self.categories)
        lines = [f"Kept because of a legal hold: {kept}.", self.obligation]
        lines += list(self.texts)
        if self.review_on is not None:
            lines.append(f"The hold is reviewed by {self.review_on.isoformat()}.")
        else:
            lines.append("The organisation has not yet set a date to review the hold.")
        return "\n".join(lines)


def explain_holds(groups: list[HeldGroup]) -> HoldExplanation | None:
    """None when nothing of the member's is held; otherwise the categories kept (product
    and kind, with counts), the obligation, the distinct member-facing texts and the
    earliest review date (the soonest moment anything may change for the member)."""
    groups = [g for g in groups if g.count > 0]
    if not groups:
        return None
    totals: dict[str, int] = {}
    for g in groups:
        label = f"{KIND_LABELS[g.kind]} in {g.product}"
        totals[label] = totals.get(label, 0) + g.count
    texts = sorted({g.member_text.strip() for g in groups if g.member_text and g.member_text.strip()})
    dates = [g.review_on for g in groups if g.review_on is not None]
    return HoldExplanation(
        categories=tuple(KeptCategory(label, n) for label, n in sorted(totals.items())),
        obligation=OBLIGATION,
        texts=tuple(texts),
        review_on=min(dates) if dates else None,
        review_unknown=any(g.review_on is None for g in groups),
    )


async def member_hold_explanation(member_id: uuid.UUID) -> HoldExplanation | None:
    """The explanation for one member, read as groups (one index range of the member's
    items; the number of rows is the number of distinct product/kind/text/date)."""
    rows = await db.fetch(
        "SELECT coalesce(p.name, 'a product') AS product, c.kind, c.hold_member_text, "
        "c.hold_review_on, count(*) AS n FROM content_items c "
        "LEFT JOIN products p ON p.tenant_id = c.tenant_id AND p.id = c.product_id "
        "WHERE c.tenant_id = $1 AND c.member_id = $2 AND c.legal_hold "
        "GROUP BY 1, 2, 3, 4",
        db.current_org(), member_id,
    )
    return explain_holds([
        HeldGroup(r["product"], ContentKind(r["kind"]), int(r["n"]), r["hold_member_text"],
                  r["hold_review_on"])
        for r in rows
    ])
