"""The console's policy pages: rules per unit or group with an impact preview before
every change, the history of the rule set with diffs and rollback, and "view as member".

Handlers parse the form, call one service function of ``tenants.policy.service`` and
render; the presentation helpers here (value labels, provenance, purposes) are shared
with the member's account page so both faces describe a setting in the same words.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import rfc3339
from app.web.console.tables import ListView
from app.web.numbers import INT64, whole_number
from app.web.pages import PageContext, Web, page
from policies.catalogue import Catalogue, Purpose, Setting, SettingType
from policies.resolve import Resolved, SourceKind, TargetKind
from tenants import db
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError, TenantryError
from tenants.groups.models import Group
from tenants.members import service as members
from tenants.organisations import days
from tenants.organisations import service as organisations
from tenants.pagination import Sort, paginate
from tenants.permissions import Permission
from tenants.policy import previews
from tenants.policy import service as policy
from tenants.policy.models import PolicyRule, PolicyVersion
from tenants.units.models import Unit
from tenants.units.rules import ancestor_ids

T = TypeVar("T")

# --- words shared with the account page ------------------------------------------------

PURPOSE_TITLES: dict[Purpose, str] = {
    Purpose.PROVIDE: "Providing the products",
    Purpose.IMPROVE: "Improving the products",
    Purpose.PERSONALISE: "Personalisation and recommendations",
    Purpose.ADVERTISING: "Advertising and promotional communications",
    Purpose.COMBINE: "Combining data across products",
    Purpose.SHARE: "Sharing with third parties",
    Purpose.COOKIES: "Cookies and web beacons",
    Purpose.SOCIAL: "Social features",
}

#: Plain words for the built-in enum values; other values are shown capitalised.
ENUM_LABELS = {
    "off": "Off",
    "required": "Required data only",
    "optional": "Required and optional data",
    "nobody": "Nobody",
    "network": "Network only",
    "organisation": "Everyone in the organisation",
}

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TARGET_TEXT = re.compile(r"(unit|group):" + UUID_TEXT.pattern)
SETTING_TEXT = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")


def show_value(setting: Setting | None, value: Any) -> str:
    """A value as people read it: On/Off, the enum's label, the list joined."""
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, str) and (setting is None or setting.type is SettingType.ENUM):
        return ENUM_LABELS.get(value, value.replace("_", " ").capitalize())
    return str(value)


@dataclass(frozen=True, slots=True)
class ShownSample:
    """One side of a sample comparison: which value, what it is called, what is sent."""

    heading: str
    value: str
    description: str
    #: The document pretty-printed; the template escapes it.
    document: str


def compare_samples(setting: Setting, current: Any, selected: Any) -> list[ShownSample]:
    """The samples of the current and the selected value, side by side (one when they are
    the same value); empty when the setting declares none. A value without a sample says so
    rather than vanishing, so the comparison never looks as if nothing were sent."""
    if not setting.samples:
        return []
    shown = []
    pairs = (
        [("Now", current)] if current == selected else [("Now", current), ("Selected", selected)]
    )
    for heading, value in pairs:
        sample = setting.sample_for(value)
        shown.append(
            ShownSample(
                heading,
                show_value(setting, value),
                sample.description if sample else "The product has not shown what it sends here.",
                json.dumps(sample.parsed(), indent=2, ensure_ascii=False) if sample else "",
            )
        )
    return shown


def sample_choices(setting: Setting) -> list[tuple[str, str]]:
    """The values a setting has samples for, as (form text, label) pairs."""
    return [
        (
            s.value,
            show_value(setting, s.value == "true" if setting.type is SettingType.BOOL else s.value),
        )
        for s in setting.samples
    ]


def sample_value(setting: Setting, text: str | None) -> Any:
    """The value a sample choice names (``true`` is True for a bool); None when the setting
    has no sample for it, so a hand-edited address cannot show a value the setting lacks."""
    if text is None or not any(s.value == text for s in setting.samples):
        return None
    return text == "true" if setting.type is SettingType.BOOL else text


def anchor(key: str) -> str:
    """An id for a setting's block: setting keys hold dots, which CSS selectors (htmx
    targets) would read as classes."""
    return "setting-" + re.sub(r"[^a-z0-9]+", "-", key.lower())


def by_purpose(items: Iterable[T], setting_of: Callable[[T], Setting]) -> list[tuple[str, list[T]]]:
    """Items grouped under their setting's purpose, in the privacy statement's order."""
    grouped: dict[Purpose, list[T]] = {p: [] for p in Purpose}
    for item in items:
        grouped[setting_of(item).purpose].append(item)
    return [(PURPOSE_TITLES[p], rows) for p, rows in grouped.items() if rows]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Why a member has a value: ``kind`` is locked, group, unit, member or default."""

    kind: str
    label: str
    #: The unit or group the rule is on; empty for a choice or the default.
    where: str = ""


def provenance(resolved: Resolved, names: Mapping[str, str]) -> Provenance:
    if resolved.source.kind is SourceKind.MEMBER:
        return Provenance("member", "Own choice")
    if resolved.source.kind is SourceKind.DEFAULT:
        return Provenance("default", "Default")
    where = names.get(resolved.source.target_id or "", "a unit or group that is gone")
    if resolved.locked:
        return Provenance("locked", "Locked", where)
    if resolved.source.target_kind is TargetKind.GROUP:
        return Provenance("group", "Group rule", where)
    return Provenance("unit", "Unit rule", where)


async def target_names(ids: Iterable[str]) -> dict[str, str]:
    """The names of the units and groups among ``ids`` (texts; anything not an id is
    skipped), by id as text, the form rule targets use: as many rows as the page names,
    never every unit of the organisation."""
    wanted = sorted({i for i in ids if UUID_TEXT.fullmatch(i)})
    if not wanted:
        return {}
    rows = await db.fetch(
        "SELECT id, name FROM units WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
        "UNION ALL SELECT id, name FROM groups WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
        db.current_org(),
        wanted,
    )
    return {str(r["id"]): r["name"] for r in rows}


def ids_in(*texts: str | None) -> set[str]:
    """The ids written in summaries (``readable_summary`` names them)."""
    return {found for text in texts if text for found in UUID_TEXT.findall(text)}


#: Each name looked up by its key (``= ANY`` of the ids the rules hold): written as a
#: semi-join (``id IN (SELECT …)``), the planner chose to scan every unit once the
#: organisation had 20,000 of them (the policies page took 22.5 ms at a million members
#: against 14.6 ms at 100,000).
RULE_TARGET_NAMES_SQL = """
SELECT id, name FROM units
 WHERE id = ANY(ARRAY(SELECT DISTINCT unit_id FROM policy_rules WHERE unit_id IS NOT NULL))
UNION ALL
SELECT id, name FROM groups
 WHERE id = ANY(ARRAY(SELECT DISTINCT group_id FROM policy_rules WHERE group_id IS NOT NULL))
"""


async def rule_target_names() -> dict[str, str]:
    """The names of the units and groups that carry rules (the only ones a setting's
    provenance can name), by id as text: as many as there are rules, not units."""
    rows = await db.fetch(RULE_TARGET_NAMES_SQL)
    return {str(r["id"]): r["name"] for r in rows}


#: Children shown under each unit of the policies page's tree; past it the tree says how
#: to reach the others (the units page, paged and searchable, links each unit's policies).
TREE_CHILDREN = 50


#: The first ``$3`` children by name of each unit in ``$2``, numbered per parent: one range
#: of the (tenant_id, parent_id, name) index each.
CHILDREN_SQL = """
SELECT c.id, c.parent_id, c.n
  FROM unnest($2::uuid[]) AS p (id)
 CROSS JOIN LATERAL (
   SELECT id, parent_id, row_number() OVER (ORDER BY name, id) AS n
     FROM units WHERE tenant_id = $1 AND parent_id = p.id ORDER BY name, id LIMIT $3
 ) AS c
"""


async def units_around(unit: Unit) -> tuple[list[Unit], set[uuid.UUID]]:
    """The unit, its ancestors, and the first TREE_CHILDREN children of each of them by
    name: the tree opened down to the unit, as many rows as its depth times TREE_CHILDREN
    at most, however wide the organisation, in two statements whatever the depth. Also
    the units whose children did not all fit."""
    path = [uuid.UUID(i) for i in ancestor_ids(unit.path)]
    rows = await db.fetch(CHILDREN_SQL, db.current_org(), path, TREE_CHILDREN + 1)
    cut = {r["parent_id"] for r in rows if r["n"] > TREE_CHILDREN}
    shown = path + [r["id"] for r in rows if r["n"] <= TREE_CHILDREN]
    return list(await Unit.filter(id__in=shown)), cut


#: Groups the policies page lists besides those with rules and the one open; past it the
#: page says where the others are (each group's page links its policies).
GROUPS_SHOWN = 50


async def groups_listed(ruled: Mapping[str, int], target: Target) -> tuple[list[Group], bool]:
    """The groups the page lists, by priority then name: those with rules (``ruled`` ids),
    the open one, and the first GROUPS_SHOWN; and whether there are more. As many rows as
    there are rules plus fifty, however many groups the identity provider pushed."""
    first = await Group.all().order_by("-priority", "name").limit(GROUPS_SHOWN + 1)
    wanted = set(ruled) | ({str(target.id)} if target.kind is TargetKind.GROUP else set())
    listed = {g.id: g for g in first[:GROUPS_SHOWN]}
    missing = [i for i in wanted if UUID_TEXT.fullmatch(i) and uuid.UUID(i) not in listed]
    if missing:
        listed.update((g.id, g) for g in await Group.filter(id__in=missing))
    ordered = sorted(listed.values(), key=lambda g: (-g.priority, g.name))
    return ordered, len(first) > GROUPS_SHOWN


# --- parsing forms ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    id: uuid.UUID
    name: str

    @property
    def token(self) -> str:
        return f"{self.kind.value}:{self.id}"


async def find_target(text: str | None) -> Target | None:
    """The unit or group named by ``unit:<id>`` / ``group:<id>``; None when there is none."""
    kind, _, raw = (text or "").partition(":")
    try:
        target_kind, target_id = TargetKind(kind), uuid.UUID(raw)
    except ValueError:
        return None
    model = Unit if target_kind is TargetKind.UNIT else Group
    found = await model.filter(id=target_id).first()
    return Target(target_kind, target_id, found.name) if found else None


def parse_value(setting: Setting, text: str | None) -> Any:
    """The form's text as the setting's type; the service validates the range.

    A checkbox sends nothing when unticked, so a missing boolean is Off."""
    raw = (text or "").strip()
    if setting.type is SettingType.BOOL:
        return raw.lower() in {"on", "true", "1", "yes"}
    if setting.type is SettingType.INT:
        number = whole_number(raw, low=INT64[0], high=INT64[1])
        if number is None:
            raise InvalidInputError(
                f"{setting.title} takes a whole number",
                fields=[FieldProblem("value", "is not a whole number")],
            )
        return number
    if setting.type is SettingType.STRING_LIST:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def form_value(value: Any) -> str:
    """A value as a form field carries it, so that ``parse_value`` reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _effective_from(text: str | None, zone: ZoneInfo) -> datetime | None:
    """The start of the day the form names, in the organisation's zone."""
    if not text:
        return None
    try:
        return days.start_of(rfc3339.parse_date(text.strip()), zone)
    except ValueError as error:
        raise InvalidInputError(
            "the effective date is not a date", fields=[FieldProblem("effective_from", str(error))]
        ) from None


@dataclass(frozen=True, slots=True)
class ChangeForm:
    """A rule change as the console's forms send it."""

    target: Target
    setting: Setting
    change: policy.RuleInput
    #: The organisation's: the day the form names begins at midnight there.
    zone: ZoneInfo

    @property
    def effective_day(self) -> date | None:
        """The day the change takes effect, as the admin named it."""
        when = self.change.effective_from
        return when.astimezone(self.zone).date() if when else None

    @property
    def fields(self) -> dict[str, str]:
        """Hidden fields that carry the change from the preview to the save."""
        day = self.effective_day
        return {
            "target": self.target.token,
            "setting": self.setting.key,
            "value": form_value(self.change.value),
            "enforced": "on" if self.change.enforced else "",
            "reason": self.change.reason,
            "effective_from": day.isoformat() if day else "",
        }

    @property
    def back(self) -> str:
        """The rules page scrolled to the setting, naming it so the outcome shows there."""
        key = self.setting.key
        return f"/console/policies?target={self.target.token}&setting={quote(key)}#{anchor(key)}"


async def read_change(form: Mapping[str, str], cat: Catalogue) -> ChangeForm:
    """The change a form describes; InvalidInputError naming the field that is wrong."""
    target = await find_target(form.get("target"))
    if target is None:
        raise InvalidInputError("choose a unit or group", fields=[FieldProblem("target", "none")])
    key = form.get("setting", "")
    if key not in cat:
        raise InvalidInputError(
            f"there is no setting {key!r}", fields=[FieldProblem("setting", key)]
        )
    setting = cat[key]
    reason = (form.get("reason") or "").strip()
    policy.check_rule_reason(reason)
    zone = await organisations.time_zone()
    change = policy.RuleInput(
        target.kind,
        target.id,
        key,
        parse_value(setting, form.get("value")),
        form.get("enforced") in {"on", "true", "1"},
        reason,
        _effective_from(form.get("effective_from"), zone),
    )
    return ChangeForm(target, setting, change, zone)


def _back_from(form: Mapping[str, str]) -> str:
    """The rules page of the form's target (whether or not it still exists)."""
    target, key = form.get("target", ""), form.get("setting", "")
    if not TARGET_TEXT.fullmatch(target):
        return "/console/policies"
    if SETTING_TEXT.fullmatch(key):
        return f"/console/policies?target={target}&setting={key}#{anchor(key)}"
    return f"/console/policies?target={target}"


def _explained(error: TenantryError) -> str:
    fields = "; ".join(f"{f.field}: {f.reason}" for f in error.fields)
    return error.message + (f" ({fields})" if fields else "")


# --- what the pages show -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetSetting:
    """One setting as the chosen unit or group sees it."""

    setting: Setting
    #: What a member of the unit with no groups and no choices gets (None for a group).
    here: Resolved | None
    #: What the unit would get without its own rule: its parent's view, or the default.
    inherited: Resolved | None
    rule: PolicyRule | None


@dataclass(frozen=True, slots=True)
class TreeEntry:
    unit: Unit
    depth: int
    #: Not a unit of its own: where the children of ``unit`` that are not shown would be.
    more: bool = False


def unit_tree(units: list[Unit], cut: Collection[uuid.UUID] = ()) -> list[TreeEntry]:
    """Units in tree order, siblings by name (the stored path orders by id, not name); after
    the children of a unit in ``cut``, an entry saying that more are not shown."""
    children: dict[uuid.UUID | None, list[Unit]] = {}
    for unit in sorted(units, key=lambda u: u.name.lower()):
        children.setdefault(unit.parent_id, []).append(unit)
    ordered: list[TreeEntry] = []
    stack = [TreeEntry(u, 0) for u in reversed(children.get(None, []))]
    while stack:
        entry = stack.pop()
        ordered.append(entry)
        if entry.more:
            continue
        if entry.unit.id in cut:
            stack.append(TreeEntry(entry.unit, entry.depth + 1, more=True))
        stack.extend(
            TreeEntry(c, entry.depth + 1) for c in reversed(children.get(entry.unit.id, []))
        )
    return ordered


def describe_rule(setting: Setting | None, rule: Mapping[str, Any] | None) -> str:
    """A stored rule (as versions keep it) in one line."""
    if rule is None:
        return "no rule"
    text = show_value(setting, rule.get("value"))
    if rule.get("enforced"):
        text += ", locked for everyone below"
    if rule.get("reason"):
        text += f" — “{rule['reason']}”"
    if rule.get("effective_from"):
        text += f" — from {str(rule['effective_from'])[:10]}"
    replaced = rule.get("replaces")
    if isinstance(replaced, Mapping):
        text += f"; until then {show_value(setting, replaced.get('value'))}"
        text += ", locked" if replaced.get("enforced") else ""
    return text


def readable_summary(summary: str, names: Mapping[str, str], cat: Catalogue) -> str:
    """A version's summary (written by the service with ids and setting keys) with unit and
    group names and setting titles in their place."""
    text = UUID_TEXT.sub(lambda m: names.get(m.group(0), "(removed)"), summary)
    return re.sub(
        r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)+",
        lambda m: cat[m.group(0)].title if m.group(0) in cat else m.group(0),
        text,
    )


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.POLICIES_READ)
    async def rules_page(ctx: PageContext) -> Response:
        """Every setting as the chosen unit (default: the root) or group sees it. A unit's
        values come from resolving a member of it with no groups or choices through the
        same compiled policy products get, so the page cannot disagree with them."""
        root = await Unit.get(parent_id=None)
        wanted = ctx.request.query_params.get("target")
        target = (
            await find_target(wanted) if wanted else Target(TargetKind.UNIT, root.id, root.name)
        )
        if target is None:
            raise NotFoundError("there is no such unit or group")
        cat = await policy.catalogue()
        compiled = (await policy.compiled_policy(ctx.request.app.state.decisions)).compiled
        own = {r.setting: r for r in await policy.list_rules(target_id=target.id)}
        here: dict[str, Resolved] = {}
        inherited: dict[str, Resolved] = {}
        parent = None
        unit = await Unit.get(id=target.id) if target.kind is TargetKind.UNIT else root
        units, cut = await units_around(unit)
        if target.kind is TargetKind.UNIT:
            parent = next((u for u in units if u.id == unit.parent_id), None)
            here = compiled.resolve(str(unit.id), (), {})
            if parent is not None:
                inherited = compiled.resolve(str(parent.id), (), {})
        rows = [
            TargetSetting(s, here.get(s.key), inherited.get(s.key), own.get(s.key)) for s in cat
        ]
        counts = {
            str(r["t"]): r["n"]
            for r in await db.fetch(
                "SELECT coalesce(unit_id, group_id) AS t, count(*) AS n FROM policy_rules GROUP BY 1"
            )
        }
        groups, more_groups = await groups_listed(counts, target)
        # After a save the outcome shows beside the setting, where the page scrolls to,
        # rather than in the banner at the top, out of sight.
        focus = ctx.request.query_params.get("setting")
        beside = focus is not None and focus in cat and ctx.flash is not None
        return ctx.render(
            "console/policies.html",
            focus=focus if beside else None,
            inline_flash=ctx.flash if beside else None,
            flash=None if beside else ctx.flash,
            target=target,
            at_root=target.id == root.id,
            parent=parent,
            tree=unit_tree(units, cut),
            groups=groups,
            more_groups=more_groups,
            counts=counts,
            purposes=by_purpose(rows, lambda r: r.setting),
            names=await rule_target_names(),
            show_value=show_value,
            form_value=form_value,
            provenance=provenance,
            anchor=anchor,
            now=datetime.now(UTC),
            reason_max=policy.REASON_MAX_LENGTH,
        )

    @page(web, permission=Permission.POLICIES_WRITE)
    async def preview(ctx: PageContext) -> Response:
        """The impact of a change, before it is made: a fragment for htmx, else a page.

        For htmx, a change reaching more than ``previews.LARGE_SCOPE`` members starts a
        preview job and answers its progress, which polls (the same form and ``run``, the
        job's id) until the impact replaces it. Without scripts the page waits for it."""
        removing = ctx.form.get("remove") == "yes"
        try:
            form = await read_change(ctx.form, await policy.catalogue())
            c = form.change
            run = ctx.form.get("run")
            if ctx.is_htmx and run is not None:
                return await _preview_run(ctx, form, removing, run)
            if ctx.is_htmx and (
                await previews.scope_size(c.target_kind, c.target_id) > previews.LARGE_SCOPE
            ):
                job = await previews.start_preview(c, removing=removing)
                return _preview_progress(ctx, form, removing, job, previews.PreviewState(0, 0))
            impact = await (
                policy.preview_rule_removal(c.target_kind, c.target_id, c.setting)
                if removing
                else policy.preview_rule_change(c)
            )
        except (InvalidInputError, NotFoundError) as error:
            if not ctx.is_htmx:
                raise
            return ctx.render("console/policies_impact.html", error=_explained(error))
        context = _impact_context(form, impact, removing)
        context["samples"] = await _samples_for(ctx, form, removing)
        if ctx.is_htmx:
            return ctx.render("console/policies_impact.html", heading_level=5, **context)
        return ctx.render("console/policies_preview.html", heading_level=2, **context)

    def _impact_context(form: ChangeForm, impact: policy.Impact, removing: bool) -> dict[str, Any]:
        c = form.change
        return {
            "form": form,
            "impact": impact,
            "removing": removing,
            # A date already past means "in force now" (``policy.set_rule``): said so, since
            # it also means no advance notice to the members it changes.
            "past_date": c.effective_from is not None and c.effective_from <= datetime.now(UTC),
            # Whole days of notice members get, when the change is scheduled: fewer than the
            # organisation gives are said before saving (they are told at once).
            "notice_left": (c.effective_from - datetime.now(UTC)).days
            if c.effective_from is not None and c.effective_from > datetime.now(UTC)
            else None,
            "today": days.today(form.zone),
            "shown": show_value(form.setting, c.value),
            "required_off": form.setting.required and not removing and form.setting.is_off(c.value),
        }

    def _preview_progress(
        ctx: PageContext,
        form: ChangeForm,
        removing: bool,
        job: uuid.UUID,
        state: previews.PreviewState,
    ) -> Response:
        """The progress of a preview job, asking again in a moment with the same form."""
        again = {"csrf": ctx.csrf, **form.fields, "run": str(job)}
        if removing:
            again["remove"] = "yes"
        return ctx.render("console/policies_progress.html", form=form, state=state, again=again)

    async def _preview_run(
        ctx: PageContext, form: ChangeForm, removing: bool, run: str
    ) -> Response:
        try:
            job = uuid.UUID(run)
        except ValueError:
            raise InvalidInputError(
                "the preview is not one", fields=[FieldProblem("run", "is not a preview")]
            ) from None
        state = await previews.preview_state(job)
        if state.failed:
            raise InvalidInputError("the preview could not be finished; preview again")
        if state.impact is None:
            return _preview_progress(ctx, form, removing, job, state)
        return ctx.render(
            "console/policies_impact.html",
            heading_level=5,
            samples=await _samples_for(ctx, form, removing),
            **_impact_context(form, state.impact, removing),
        )

    async def _samples_for(ctx: PageContext, form: ChangeForm, removing: bool) -> list[ShownSample]:
        """What the product sends now for the target and at the value being previewed.
        Now is what a member of the unit with no groups and no choices gets (for a group:
        its own rule, else the default), the same view the rules page shows."""
        if removing or not form.setting.samples:
            return []
        key = form.setting.key
        current: Any = form.setting.default
        if form.target.kind is TargetKind.UNIT:
            compiled = (await policy.compiled_policy(ctx.request.app.state.decisions)).compiled
            here = compiled.resolve(str(form.target.id), (), {})
            current = here[key].value if key in here else current
        else:
            own = [r for r in await policy.list_rules(target_id=form.target.id) if r.setting == key]
            current = own[0].value if own else current
        return compare_samples(form.setting, current, form.change.value)

    @page(web, permission=Permission.POLICIES_WRITE)
    async def save(ctx: PageContext) -> Response:
        """Save the previewed rule. A required setting switched off comes back as a page
        naming the products and members it stops, until confirmed."""
        try:
            form = await read_change(ctx.form, await policy.catalogue())
            await policy.set_rule(
                form.change, confirm=ctx.form.get("confirm") == "yes", actor=ctx.actor
            )
        except (InvalidInputError, NotFoundError) as error:
            # Refused before anything was written. Say so on the rules page: the page the
            # form came from may be the preview, which is only answered to a POST.
            return ctx.redirect(_back_from(ctx.form), f"Not done: {_explained(error)}")
        except policy.ConfirmationRequiredError as error:
            # Raised before anything is written: ask again, naming what stops for whom.
            return ctx.render(
                "console/policies_confirm.html",
                form=form,
                impact=error.extra["impact"],
                message=error.message,
                shown=show_value(form.setting, form.change.value),
            )
        lock = ", locked for everyone below," if form.change.enforced else ""
        at = form.change.effective_from
        if at is not None and at > datetime.now(UTC):
            return ctx.redirect(
                form.back,
                f"Scheduled: {form.setting.title} becomes "
                f"{show_value(form.setting, form.change.value)}{lock} on {form.target.name} "
                f"from {form.effective_day} ({form.zone.key}); members see it under Coming"
                " changes.",
            )
        return ctx.redirect(
            form.back,
            f"Saved: {form.setting.title} is {show_value(form.setting, form.change.value)}"
            f"{lock} on {form.target.name}.",
        )

    @page(web, permission=Permission.POLICIES_WRITE)
    async def remove(ctx: PageContext) -> Response:
        """Remove the target's rule for the setting; the form names (target, setting)
        rather than a rule id, as the preview of the removal does."""
        form = await read_change(ctx.form, await policy.catalogue())
        rule = next(
            (
                r
                for r in await policy.list_rules(target_id=form.target.id)
                if r.setting == form.setting.key
            ),
            None,
        )
        if rule is None:
            return ctx.redirect(
                form.back, f"{form.target.name} has no rule for {form.setting.title}."
            )
        await policy.delete_rule(rule.id, actor=ctx.actor)
        return ctx.redirect(
            form.back, f"Removed the rule for {form.setting.title} on {form.target.name}."
        )

    @page(web, permission=Permission.POLICIES_READ)
    async def history(ctx: PageContext) -> Response:
        view = ListView.parse(
            "/console/policies/history",
            ctx.request.query_params,
            sortable=("number",),
            default_sort="-number",
        )
        versions = await paginate(
            PolicyVersion.all(), view.sort, cursor=view.cursor, limit=view.size
        )
        return ctx.render(
            "console/policies_history.html",
            cat=await policy.catalogue(),
            versions=versions.items,
            **view.context(
                next_cursor=versions.next_cursor,
                total=await PolicyVersion.all().count(),
                shown=len(versions.items),
            ),
            current=ctx.organisation.policy_version,
            names=await target_names(ids_in(*(v.summary for v in versions.items))),
            readable=readable_summary,
        )

    @page(web, permission=Permission.POLICIES_READ)
    async def diff(ctx: PageContext) -> Response:
        """Version N against N-1 (the latest when none is asked for), and what restoring
        version N would change now."""
        current = ctx.organisation.policy_version
        number = whole_number(ctx.request.query_params.get("version"))
        number = current if number is None else number
        if number > current:
            raise NotFoundError(f"there is no policy version {number}")
        version = await PolicyVersion.filter(number=number).first() if number else None
        changes = await policy.diff_versions(number - 1, number) if number else []
        restoring = (
            await policy.diff_versions(current, number)
            if number != current and ctx.can(Permission.POLICIES_WRITE)
            else []
        )
        cat = await policy.catalogue()
        return ctx.render(
            "console/policies_diff.html",
            cat=cat,
            number=number,
            version=version,
            current=current,
            changes=changes,
            restoring=restoring,
            names=await target_names(
                {str(c.target_id) for c in (*changes, *restoring)}
                | ids_in(version.summary if version else None)
            ),
            settings=cat.settings,
            describe=describe_rule,
            readable=readable_summary,
        )

    @page(web, permission=Permission.POLICIES_WRITE)
    async def rollback(ctx: PageContext) -> Response:
        """Restore a version's rules, as a new version (history is never rewritten)."""
        number = whole_number(ctx.form.get("version"), high=ctx.organisation.policy_version)
        if number is None:
            raise InvalidInputError(
                "choose one of the versions in the history",
                fields=[FieldProblem("version", "is not a version of the rules")],
            )
        new = await policy.rollback(number, actor=ctx.actor)
        return ctx.redirect(
            "/console/policies/history",
            f"Restored the rules of version {number}; this is now version {new}.",
        )

    @page(web, permission=Permission.POLICIES_READ)
    async def as_member(ctx: PageContext) -> Response:
        """A member's resolved settings with provenance, found by email or name."""
        params = ctx.request.query_params
        q = (params.get("q") or "").strip()[:200]
        found = []
        if q:
            found = (
                await members.list_members(
                    members.MemberFilter(q=q), Sort("email"), cursor=None, limit=20
                )
            ).items
        member = unit = None
        rows: list[tuple[Setting, Resolved]] = []
        group_names: list[str] = []
        try:
            member_id = uuid.UUID(params.get("id") or "")
        except ValueError:
            member_id = None
        if member_id is not None:
            member = await members.get_member(member_id)
            unit = await Unit.get(id=member.unit_id)
            group_names = [
                g.name
                for g in await Group.filter(memberships__member_id=member.id).order_by("name")
            ]
            resolved = (await policy.effective_settings([member.id]))[member.id]
            cat = await policy.catalogue()
            rows = [(s, resolved[s.key]) for s in cat]
        return ctx.render(
            "console/policies_member.html",
            q=q,
            found=found,
            member=member,
            unit=unit,
            group_names=group_names,
            purposes=by_purpose(rows, lambda r: r[0]),
            names=await rule_target_names(),
            show_value=show_value,
            provenance=provenance,
        )

    return [
        Route("/console/policies", rules_page, methods=["GET"]),
        Route("/console/policies/preview", preview, methods=["POST"]),
        Route("/console/policies/rules", save, methods=["POST"]),
        Route("/console/policies/rules/remove", remove, methods=["POST"]),
        Route("/console/policies/history", history, methods=["GET"]),
        Route("/console/policies/diff", diff, methods=["GET"]),
        Route("/console/policies/rollback", rollback, methods=["POST"]),
        Route("/console/policies/member", as_member, methods=["GET"]),
    ]
