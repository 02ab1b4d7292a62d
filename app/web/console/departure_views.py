"""What the departure pages show and read: the words for actions, successors and steps,
a plan's totals as bars (``PlanSummary``), and the start and policy forms with their
field-by-field errors. Shared by the console's departure pages and the member's account
page, so the admin's preview and the member's "what leaving would mean for you" say the
same thing the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app import rfc3339
from app.web.numbers import INT32, whole_number
from tenants.departures.models import (
    ContentAction,
    Departure,
    DepartureStep,
    PersonalOutcome,
    StepStatus,
)
from tenants.departures.planner import ItemAction, Plan, PolicyView, SuccessorSource
from tenants.errors import FieldProblem, TenantryError
from tenants.jobs.models import Job
from tenants.members.models import Member
from tenants.products.models import Product

# --- words ---------------------------------------------------------------------------------

ACTION_LABELS: dict[str, str] = {
    ItemAction.TRANSFER: "Transferred to the successor",
    ItemAction.ARCHIVE: "Kept in the organisation archive",
    ItemAction.DELETE_AFTER_RETENTION: "Deleted when retention ends",
    ItemAction.EXPORT_THEN_DELETE: "Personal: exportable, then deleted",
    ItemAction.EXPORT_THEN_ARCHIVE: "Personal: exportable, then archived",
}
KIND_LABELS: dict[str, str] = {"organisation": "Work content", "personal": "Personal items"}
POLICY_ACTION_LABELS: dict[str, str] = {
    ContentAction.TRANSFER: "Transfer to the successor",
    ContentAction.ARCHIVE: "Keep in the organisation archive",
    ContentAction.DELETE: "Delete after retention",
}
PERSONAL_LABELS: dict[str, str] = {
    PersonalOutcome.DELETE: "Deleted after retention (unless under legal hold)",
    PersonalOutcome.ARCHIVE: "Kept in the organisation archive",
}
SUCCESSOR_WHY: dict[str, str] = {
    SuccessorSource.CHOSEN: "chosen for this departure",
    SuccessorSource.MANAGER: "their manager",
    SuccessorSource.FALLBACK: "the policy's fallback successor",
    SuccessorSource.NONE: "nobody: no active manager and no fallback successor",
}
#: The same, said to the member.
SUCCESSOR_WHY_MEMBER: dict[str, str] = {
    SuccessorSource.CHOSEN: "chosen for this departure",
    SuccessorSource.MANAGER: "your manager",
    SuccessorSource.FALLBACK: "the person your organisation names when there is no manager",
    SuccessorSource.NONE: "nobody: your work content is kept in the organisation archive",
}
STEP_TITLES: dict[str, str] = {
    "notify": "Tell the member and the products",
    "suspend": "End sign-in and suspend product accounts",
    "transfer": "Hand over content",
    "purge": "Delete what retention no longer keeps, anonymise",
}


def number(value: int) -> str:
    """12345 → "12,345"."""
    return f"{value:,}"


def size(value: int) -> str:
    """Bytes in the largest unit that keeps the number at least 1 (1,000-based)."""
    amount = float(value)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{int(amount):,} {unit}" if unit == "bytes" else f"{amount:,.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def width_class(part: int, whole: int) -> str:
    """A bar's width as a CSS class in 5 % steps (``w-35``): the CSP forbids style
    attributes. Anything above nothing shows at least one step."""
    if whole <= 0 or part <= 0:
        return "w-0"
    steps = max(1, round(part * 20 / whole))
    return f"w-{min(steps, 20) * 5}"


@dataclass(frozen=True, slots=True)
class Share:
    """One part of a breakdown: a label, its count and bytes, and its bar."""

    key: str
    label: str
    count: int
    bytes: int
    width: str


def shares(
    totals: Mapping[str, Mapping[str, int]], labels: Mapping[str, str], whole: int
) -> list[Share]:
    rows = [
        Share(k, labels.get(k, k), int(v["count"]), int(v["bytes"]), width_class(v["count"], whole))
        for k, v in totals.items()
    ]
    return sorted(rows, key=lambda s: (-s.count, s.label))


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """A plan's totals as people read them, from ``Plan.to_json()`` (a preview) or a
    departure's ``plan_totals`` (the preview that was confirmed)."""

    total: int
    total_bytes: int
    held: int
    by_action: list[Share]
    by_product: list[Share]
    by_kind: list[Share]
    warnings: list[tuple[str, str]]

    @classmethod
    def of(cls, data: Mapping[str, Any], product_names: Mapping[str, str]) -> PlanSummary:
        total = dict(data.get("total") or {"count": 0, "bytes": 0})
        whole = int(total["count"])
        return cls(
            total=whole,
            total_bytes=int(total["bytes"]),
            held=int((data.get("held") or {}).get("count", 0)),
            by_action=shares(data.get("by_action") or {}, ACTION_LABELS, whole),
            by_product=shares(data.get("by_product") or {}, product_names, whole),
            by_kind=shares(data.get("by_kind") or {}, KIND_LABELS, whole),
            warnings=[(w["code"], w["message"]) for w in data.get("warnings") or []],
        )


async def product_names() -> dict[str, str]:
    return {str(p.id): p.name for p in await Product.all().only("id", "name")}


async def names_of(member_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {m for m in member_ids if m is not None}
    if not wanted:
        return {}
    return {m.id: m.name for m in await Member.filter(id__in=list(wanted)).only("id", "name")}


def plan_context(plan: Plan, products: Mapping[str, str]) -> dict[str, Any]:
    """What the preview partial needs from a computed plan."""
    return {
        "plan": plan,
        "summary": PlanSummary.of(plan.to_json(), products),
        "successor_why": SUCCESSOR_WHY[plan.successor_source],
        "products": products,
    }


def parse_uuid(text: str | None) -> uuid.UUID | None:
    """The id a form or path carries; None when it is empty or not an id."""
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def explained(error: TenantryError) -> str:
    """A refusal's message as a sentence, for a page."""
    return error.message[:1].upper() + error.message[1:].rstrip(".") + "."


# --- the start form -----------------------------------------------------------------------


@dataclass
class StartForm:
    """The start form as typed, and what is wrong with it, field by field."""

    last_day: str = ""
    successor: str = ""
    reason: str = ""
    #: What the successor's search holds: a name typed there but not chosen is refused,
    #: not dropped for the default (an admin typed "Grace" and the manager took over).
    searched: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    #: A refusal not tied to one field (the member is not active).
    refusal: str | None = None

    @classmethod
    def read(cls, form: Mapping[str, str]) -> StartForm:
        return cls(
            last_day=(form.get("last_day") or "").strip(),
            successor=(form.get("successor") or "").strip(),
            reason=(form.get("reason") or "").strip(),
            searched=(form.get("successor_q") or "").strip(),
        )

    def parsed(self) -> tuple[date, uuid.UUID | None] | None:
        """The last day and successor, or None with ``errors`` filled in."""
        day = None
        try:
            day = rfc3339.parse_date(self.last_day.strip())
        except ValueError:
            self.errors["last_day"] = "Enter the last day as a date (YYYY-MM-DD)."
        successor = parse_uuid(self.successor)
        if self.successor and successor is None:
            self.errors["successor"] = "Choose a member from the list."
        elif not self.successor and self.searched:
            self.errors["successor"] = (
                f"“{self.searched}” is typed but not chosen: choose them from the list,"
                " or clear the search to keep the default."
            )
        if day is None or self.errors:
            return None
        return day, successor

    def refused(self, error: TenantryError) -> None:
        """File a refusal of the service under the field it names."""
        fields = {"last_day": "last_day", "successor_id": "successor", "reason": "reason"}
        named = [f for f in error.fields if f.field in fields]
        for problem in named:
            self.errors[fields[problem.field]] = f"{explained(error)} ({problem.reason})"
        if not named:
            self.refusal = explained(error)

    @property
    def hidden(self) -> dict[str, str]:
        return {"last_day": self.last_day, "successor": self.successor, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class StepView:
    step: DepartureStep
    title: str
    job: Job | None

    @property
    def unit(self) -> str:
        return "items" if self.step.name == "transfer" else "tasks"

    @property
    def finished(self) -> bool:
        return self.step.status in (StepStatus.DONE, StepStatus.SKIPPED)


def stage_of(departure: Departure, steps: list[StepView]) -> str:
    """Where a departure stands, as the page's polling compares it: its status and how
    many steps have finished (progress within a step does not count)."""
    return f"{departure.status.value}:{sum(1 for s in steps if s.finished)}"


def current_step(steps: list[DepartureStep]) -> DepartureStep | None:
    """The first step that has not finished (running, failed or pending)."""
    return next((s for s in steps if s.status not in (StepStatus.DONE, StepStatus.SKIPPED)), None)


# --- the policy form ----------------------------------------------------------------------


@dataclass
class PolicyForm:
    """The policy form as typed; ``errors`` by form field name."""

    fallback: str
    default_action: str
    products: dict[str, str]
    retention_days: str
    export_window_days: str
    personal_outcome: str
    reinstatement_returns_items: bool
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, view: PolicyView) -> PolicyForm:
        return cls(
            fallback=str(view.fallback_successor_id or ""),
            default_action=view.default_action.value,
            products={str(k): v.value for k, v in view.product_actions.items()},
            retention_days=str(view.retention_days),
            export_window_days=str(view.export_window_days),
            personal_outcome=view.personal_outcome.value,
            reinstatement_returns_items=view.reinstatement_returns_items,
        )

    @classmethod
    def read(cls, form: Mapping[str, str]) -> PolicyForm:
        return cls(
            fallback=(form.get("fallback") or "").strip(),
            default_action=form.get("default_action") or "",
            products={
                k.removeprefix("product."): v
                for k, v in form.items()
                if k.startswith("product.") and v
            },
            retention_days=(form.get("retention_days") or "").strip(),
            export_window_days=(form.get("export_window_days") or "").strip(),
            personal_outcome=form.get("personal_outcome") or "",
            reinstatement_returns_items=form.get("reinstatement_returns_items") == "on",
        )

    def view(self) -> PolicyView | None:
        """The policy the form describes, or None with ``errors`` filled in."""
        fallback = parse_uuid(self.fallback)
        if self.fallback and fallback is None:
            self.errors["fallback"] = "Choose a member from the list."
        actions = {a.value for a in ContentAction}
        if self.default_action not in actions:
            self.errors["default_action"] = "Choose what happens to work content."
        product_actions: dict[uuid.UUID, ContentAction] = {}
        for key, value in self.products.items():
            product_id = parse_uuid(key)
            if product_id is None or value not in actions:
                self.errors[f"product.{key}"] = "Choose one of the actions."
            else:
                product_actions[product_id] = ContentAction(value)
        days: dict[str, int] = {}
        for name, text in (
            ("retention_days", self.retention_days),
            ("export_window_days", self.export_window_days),
        ):
            number = whole_number(text, low=INT32[0])
            if number is None:
                self.errors[name] = "Enter a whole number of days."
            else:
                days[name] = number
        if self.personal_outcome not in {o.value for o in PersonalOutcome}:
            self.errors["personal_outcome"] = "Choose what happens to personal items."
        if self.errors:
            return None
        return PolicyView(
            fallback_successor_id=fallback,
            default_action=ContentAction(self.default_action),
            product_actions=product_actions,
            retention_days=days["retention_days"],
            export_window_days=days["export_window_days"],
            personal_outcome=PersonalOutcome(self.personal_outcome),
            reinstatement_returns_items=self.reinstatement_returns_items,
        )

    def refused(self, problems: Iterable[FieldProblem]) -> None:
        names = {"fallback_successor_id": "fallback"}
        for problem in problems:
            name = names.get(problem.field, problem.field.replace("product_actions.", "product."))
            reason = problem.reason
            self.errors[name] = reason[:1].upper() + reason[1:] + "."
