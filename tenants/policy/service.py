"""Policy rules, members' choices and effective settings, in the caller's tenant transaction.

Every change of the rule set bumps the organisation's ``policy_version``, stores the whole
rule set as that version (history, diff, rollback), publishes a ``policy.changed`` webhook
to products (``tenants.webhooks.service.publish``) and notifies every process
(``NOTIFY tenantry_policy``) so their compiled caches drop the organisation at once.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q

from policies.cache import DecisionCache
from policies.catalogue import (
    BUILTIN,
    Catalogue,
    CatalogueError,
    Purpose,
    Sample,
    Setting,
    SettingType,
    Value,
    make_sample,
)
from policies.history import RuleChange, diff_rules
from policies.resolve import (
    CompiledPolicy,
    GroupRef,
    MemberFacts,
    Resolved,
    Rule,
    SourceKind,
    TargetKind,
    resolve_settings,
)
from policies.schedule import (
    Schedule,
    TimedRule,
    compile_schedule,
    effective_from_problem,
    rules_at,
)
from tenants import db, notifications, text
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, InvalidInputError, NotFoundError
from tenants.groups.models import Group
from tenants.ids import OrgId
from tenants.members.models import Member
from tenants.models_base import get_by_id, get_referenced
from tenants.organisations.models import Organisation
from tenants.policy.models import DeclaredSetting, MemberChoice, PolicyRule, PolicyVersion
from tenants.products.models import Product
from tenants.text import counted
from tenants.units.models import Unit
from tenants.units.rules import ancestor_ids, subtree_bounds
from tenants.webhooks.service import publish


class ConfirmationRequiredError(ConflictError):
    """Switching off a setting products need; repeat with confirmation to go ahead."""

    code = "confirmation_required"
    title = "Confirmation required"


class SettingLockedError(ConflictError):
    """The organisation enforces this setting; members cannot choose it."""

    code = "setting_locked"
    title = "Set by your organisation"


# --- the catalogue -------------------------------------------------------------------


def setting_from_definition(definition: Mapping[str, Any], product: str) -> Setting:
    """A declared setting from its JSON definition; CatalogueError naming the bad field."""
    try:
        kind = SettingType(definition["type"])
        purpose = Purpose(definition.get("purpose", Purpose.PROVIDE.value))
    except (KeyError, ValueError) as exc:
        raise CatalogueError(f"invalid setting declaration: {exc}", field="type") from None
    default = definition.get("default")
    if default is None:
        raise CatalogueError("a declared setting needs a default", field="default")
    if kind is SettingType.STRING_LIST and isinstance(default, list):
        default = tuple(default)
    setting = Setting(
        key=str(definition["key"]),
        type=kind,
        default=default,
        title=str(definition.get("title", "")),
        description=str(definition.get("description", "")),
        purpose=purpose,
        data_categories=frozenset(definition.get("data_categories", [])),
        off_effect=str(definition.get("off_effect", "")),
        allowed=tuple(definition.get("allowed", [])),
        minimum=definition.get("minimum"),
        maximum=definition.get("maximum"),
        member_choosable=bool(definition.get("member_choosable", True)),
        required=bool(definition.get("required", False)),
        consent=bool(definition.get("consent", False)),
        product=product,
    )
    setting.validate(setting.default)
    if setting.consent and (setting.type is not SettingType.BOOL or setting.default is not False):
        raise CatalogueError(
            "a setting resting on consent is an on/off setting, off by default", field="consent"
        )
    return replace(setting, samples=samples_from_definition(setting, definition.get("samples")))


def samples_from_definition(setting: Setting, declared: Any) -> tuple[Sample, ...]:
    """The checked samples of a declared setting, in the order of its values; CatalogueError
    naming ``samples.<value>...`` for one that does not fit (see ``make_sample``)."""
    if not declared:
        return ()
    if not isinstance(declared, Mapping):
        raise CatalogueError("samples map each value to a sample", field="samples")
    choices = setting.choices()
    made = {}
    for value, sample in declared.items():
        if not isinstance(sample, Mapping):
            raise CatalogueError(
                "a sample has a document and a description", field=f"samples.{value}"
            )
        made[value] = make_sample(
            setting.key, choices, str(value), sample.get("document"), sample.get("description")
        )
    return tuple(made[v] for v in choices if v in made)


async def catalogue() -> Catalogue:
    """The built-in catalogue plus the settings this organisation's products declared."""
    # In key order: the table's physical order moves with updates and vacuum, and the
    # catalogue (and what clients diff against its version) must not.
    declared = await DeclaredSetting.all().order_by("key")
    if not declared:
        return BUILTIN
    products = {p["id"]: p["key"] for p in await db.fetch("SELECT id, key FROM products")}
    return BUILTIN.with_declared(
        setting_from_definition(d.definition, products.get(d.product_id, "?")) for d in declared
    )


async def declare_settings(
    product_id: uuid.UUID, definitions: list[dict[str, Any]], *, actor: Actor
) -> Catalogue:
    """Add or update a product's own settings; refuses clashes of key or type."""
    product = await get_by_id(Product, product_id, "product")
    current = await catalogue()
    settings = []
    for index, definition in enumerate(definitions):
        try:
            settings.append(setting_from_definition(definition, product.key))
        except CatalogueError as exc:
            raise InvalidInputError(
                str(exc), fields=[FieldProblem(f"settings[{index}].{exc.field}", str(exc))]
            ) from None
    try:
        current.with_declared(settings)
    except CatalogueError as exc:
        raise ConflictError(str(exc), fields=[FieldProblem("settings.key", str(exc))]) from None
    for setting, definition in zip(settings, definitions, strict=True):
        existing = await DeclaredSetting.filter(key=setting.key).first()
        if existing is None:
            await DeclaredSetting.create(
                tenant_id=db.current_org(),
                product_id=product.id,
                key=setting.key,
                definition=definition,
            )
        elif existing.definition != definition:
            await DeclaredSetting.filter(id=existing.id).update(definition=definition)
        else:
            continue
        await audit.record(
            "policy.setting_declared",
            "setting",
            setting.key,
            actor=actor,
            after={"product": product.key, "definition": definition},
        )
    await changed(actor, summary=f"{product.key} declared {counted(len(settings), 'setting')}")
    return await catalogue()


# --- rules ---------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """``value`` as tortoise's JSONField must be given it: the field takes a str for JSON
    text that is already encoded, so an enum value (``"nobody"``) is encoded here or it
    cannot be stored at all. Other values pass unchanged."""
    return json.dumps(value) if isinstance(value, str) else value


async def _save_value(row: PolicyRule | MemberChoice, value: Any) -> None:
    """Save ``row`` with ``value`` in its JSON column (see ``_json_value``); the row keeps
    the plain value afterwards. Not through ``Model.create``: its constructor decodes a
    str again, which fails for the same reason."""
    row.value = _json_value(value)
    await row.save()
    row.value = value


def rule_view(rule: PolicyRule) -> dict[str, Any]:
    return {
        "id": str(rule.id),
        "target_kind": TargetKind.UNIT.value if rule.unit_id else TargetKind.GROUP.value,
        "target_id": str(rule.unit_id or rule.group_id),
        "setting": rule.setting,
        "value": rule.value,
        "enforced": rule.enforced,
        "reason": rule.reason,
        "effective_from": rule.effective_from.isoformat() if rule.effective_from else None,
        "replaces": rule.replaces,
    }


def as_rule(rule: PolicyRule) -> Rule:
    value = tuple(rule.value) if isinstance(rule.value, list) else rule.value
    kind = TargetKind.UNIT if rule.unit_id else TargetKind.GROUP
    return Rule(
        str(rule.id),
        kind,
        str(rule.unit_id or rule.group_id),
        rule.setting,
        value,
        rule.enforced,
        rule.reason,
    )


def replaced_rule(rule: PolicyRule) -> Rule | None:
    """What ``rule`` is until its ``effective_from`` (``PolicyRule.replaces``), if anything."""
    if not rule.replaces:
        return None
    value: Value = rule.replaces["value"]  # checked against the catalogue when stored
    return replace(
        as_rule(rule),
        value=tuple(value) if isinstance(value, list) else value,
        enforced=bool(rule.replaces.get("enforced")),
        reason=str(rule.replaces.get("reason") or ""),
    )


def timed_rules(stored: Iterable[PolicyRule]) -> list[TimedRule]:
    return [TimedRule(as_rule(r), r.effective_from, replaced_rule(r)) for r in stored]


def _in_force(rules: Iterable[PolicyRule], now: datetime) -> list[Rule]:
    """The rules as they apply at ``now`` (a scheduled change's rule in force until then)."""
    return rules_at(timed_rules(rules), now)


#: A rule's reason, at most: members read it beside the setting the rule decides.
REASON_MAX_LENGTH = 1000


def check_rule_reason(reason: str) -> None:
    """InvalidInputError naming ``reason`` when it is past ``REASON_MAX_LENGTH`` (the
    console checks it before a preview, ``set_rule`` before writing)."""
    text.check_length(reason, REASON_MAX_LENGTH, field="reason", what="rule's reason")


@dataclass(frozen=True, slots=True)
class RuleInput:
    target_kind: TargetKind
    target_id: uuid.UUID
    setting: str
    value: Any
    enforced: bool
    reason: str = ""
    effective_from: datetime | None = None


async def _check_target(target_kind: TargetKind, target_id: uuid.UUID) -> None:
    model: type[Unit] | type[Group] = Unit if target_kind is TargetKind.UNIT else Group
    await get_referenced(model, target_id, target_kind.value, field="target_id")


@dataclass(frozen=True, slots=True)
class RequiredImpact:
    setting: str
    members: int
    products: list[str]
    off_effect: str


async def set_rule(change: RuleInput, *, confirm: bool = False, actor: Actor) -> PolicyRule:
    """Create or replace the rule for (target, setting); returns it.

    Raises InvalidInputError when the value does not fit the catalogue, and
    ConfirmationRequiredError (with the impact) when it switches off a setting products
    need and ``confirm`` is not given.
    """
    check_rule_reason(change.reason)
    cat = await catalogue()
    try:
        value = cat.validate_rule(change.setting, change.value)
    except CatalogueError as exc:
        raise InvalidInputError(str(exc), fields=[FieldProblem(exc.field, str(exc))]) from None
    if change.effective_from is not None:
        problem = effective_from_problem(change.effective_from, datetime.now(UTC))
        if problem is not None:
            raise InvalidInputError(
                f"the effective date {problem}", fields=[FieldProblem("effective_from", problem)]
            )
        if change.effective_from <= datetime.now(UTC):
            # A time already past means "in force now": kept as given, the rule would read
            # "since 2020-01-01", a start it never had.
            change = dataclasses.replace(change, effective_from=None)
    await _check_target(change.target_kind, change.target_id)
    setting = cat[change.setting]
    if setting.required and setting.is_off(value) and not confirm:
        impact = await required_impact(setting, change.target_kind, change.target_id)
        raise ConfirmationRequiredError(
            f"{setting.title} is required for products to work; switching it off affects "
            f"{text.counted(impact.members, 'member')}: {impact.off_effect} Confirm to go ahead.",
            extra={
                "impact": {
                    "members": impact.members,
                    "products": impact.products,
                    "off_effect": impact.off_effect,
                }
            },
        )
    stored_value = list(value) if isinstance(value, tuple) else value
    target = (
        {"unit_id": change.target_id}
        if change.target_kind is TargetKind.UNIT
        else {"group_id": change.target_id}
    )
    existing = await PolicyRule.filter(setting=change.setting, **target).select_for_update().first()
    before = rule_view(existing) if existing else None
    now = datetime.now(UTC)
    # A rule in force when written is announced with this change; a scheduled one by the
    # worker's sweep when its time comes (``tenants.policy.schedule``).
    scheduled = change.effective_from is not None and change.effective_from > now
    announced = None if scheduled else now
    if existing is None:
        rule = PolicyRule(
            tenant_id=db.current_org(),
            setting=change.setting,
            enforced=change.enforced,
            reason=change.reason,
            effective_from=change.effective_from,
            announced_at=announced,
            unit_id=target.get("unit_id"),
            group_id=target.get("group_id"),
        )
        await _save_value(rule, stored_value)
    else:
        was = PolicyRule(
            id=existing.id, setting=existing.setting, effective_from=existing.effective_from
        )
        was_in_force = existing.effective_from is None or existing.effective_from <= now
        if not scheduled:
            existing.replaces = None
        elif was_in_force:
            # Scheduling a change of the rule in force: it stays in force until the date.
            existing.replaces = {
                "value": existing.value,
                "enforced": existing.enforced,
                "reason": existing.reason,
            }
        existing.value, existing.enforced = stored_value, change.enforced
        existing.reason, existing.effective_from = change.reason, change.effective_from
        if rule_view(existing) == before:
            return existing
        if (
            before is not None
            and (before["value"], before["enforced"]) != (stored_value, change.enforced)
        ) or change.effective_from != was.effective_from:
            from tenants.policy import schedule  # schedule imports this module

            # Members told about the change as it was hear that it is off (or moved);
            # the new date and value are noticed afresh by the sweep. A new reason
            # alone changes nothing for them.
            await schedule.cancel_notices(
                was,
                now=now,
                actor=actor,
                moved_to=change.effective_from
                if change.effective_from != was.effective_from
                else None,
            )
            existing.announced_at, existing.noticed_for = announced, None
        await _save_value(existing, stored_value)
        rule = existing
    await audit.record(
        "policy.rule_set", "policy_rule", rule.id, actor=actor, before=before, after=rule_view(rule)
    )
    await changed(
        actor, summary=f"{change.setting} on {change.target_kind.value} {change.target_id}"
    )
    return rule


async def delete_rule(rule_id: uuid.UUID, *, actor: Actor) -> None:
    rule = await get_by_id(PolicyRule, rule_id, "rule", for_update=True)
    before = rule_view(rule)
    from tenants.policy import schedule  # schedule imports this module

    # A scheduled change called off: the members already told hear that it is off.
    await schedule.cancel_notices(rule, now=datetime.now(UTC), actor=actor)
    await rule.delete()
    await audit.record("policy.rule_deleted", "policy_rule", rule_id, actor=actor, before=before)
    await changed(actor, summary=f"removed {rule.setting} rule")


async def list_rules(*, target_id: uuid.UUID | None = None) -> list[PolicyRule]:
    """All rules, or those on one unit or group, by setting."""
    query = PolicyRule.all()
    if target_id is not None:
        query = query.filter(Q(unit_id=target_id) | Q(group_id=target_id))
    return list(await query.order_by("setting"))


async def changed(actor: Actor, *, summary: str) -> int:
    """Bump the version, snapshot the rule set, announce the change (``policy.changed``);
    returns the version. Also called when a scheduled rule comes into force."""
    org = await Organisation.filter(id=db.current_org()).select_for_update().first()
    assert org is not None
    version = org.policy_version + 1
    await Organisation.filter(id=org.id).update(policy_version=version)
    rules = [rule_view(r) for r in await PolicyRule.all().order_by("setting", "id")]
    await PolicyVersion.create(
        tenant_id=org.id, number=version, summary=summary, actor=actor.display, rules=rules
    )
    await publish(
        "policy.changed",
        {"organisation_id": str(org.id), "policy_version": version, "summary": summary},
        key=f"policy.changed:{org.id}:{version}",
    )
    await notify_policy_changed(OrgId(org.id))
    return version


async def notify_policy_changed(org_id: OrgId, member_id: uuid.UUID | None = None) -> None:
    """Tell every process (at commit) that cached answers for the org or member are stale."""
    if member_id is None:
        await notifications.organisation_changed(org_id)
    else:
        await notifications.member_changed(org_id, member_id)


async def history(limit: int = 50) -> list[PolicyVersion]:
    return list(await PolicyVersion.all().order_by("-number").limit(limit))


async def version_rules(number: int) -> list[dict[str, Any]]:
    if number == 0:
        return []
    version = await PolicyVersion.filter(number=number).first()
    if version is None:
        raise NotFoundError(f"there is no policy version {number}")
    return list(version.rules)


async def diff_versions(a: int, b: int) -> list[RuleChange]:
    return diff_rules(await version_rules(a), await version_rules(b))


async def rollback(to_version: int, *, actor: Actor) -> int:
    """Make the rule set what it was at ``to_version`` (as a new version); returns it.
    ConflictError naming ``version`` when the rules in force already are that (a restore
    sent again from a page shown before the first one made an empty version)."""
    stored = await version_rules(to_version)
    ids = {
        kind: [r["target_id"] for r in stored if r["target_kind"] == kind]
        for kind in ("unit", "group")
    }
    present = {
        str(row["id"])
        for model, kind in ((Unit, "unit"), (Group, "group"))
        if ids[kind]
        for row in await model.filter(id__in=ids[kind]).values("id")
    }
    # A rule of a unit or group that is gone cannot come back, nor one that switched on
    # what rests on each member's consent (refused since; ``Setting.rule_problem``).
    cat = await catalogue()
    wanted = [
        r
        for r in stored
        if str(r["target_id"]) in present
        and (r["setting"] not in cat or cat[r["setting"]].rule_problem(r["value"]) is None)
    ]
    in_force = [rule_view(r) for r in await PolicyRule.all()]
    if not diff_rules(in_force, wanted):
        raise ConflictError(
            f"the rules already are those of version {to_version}: nothing was changed",
            fields=[FieldProblem("version", "matches the rules in force")],
        )
    now = datetime.now(UTC)
    from tenants.policy import schedule  # schedule imports this module

    for scheduled in await PolicyRule.filter(effective_from__gt=now):
        await schedule.cancel_notices(scheduled, now=now, actor=actor)
    await PolicyRule.all().delete()
    for r in wanted:
        target = (
            {"unit_id": r["target_id"]}
            if r["target_kind"] == "unit"
            else {"group_id": r["target_id"]}
        )
        effective_from = (
            datetime.fromisoformat(r["effective_from"]) if r["effective_from"] else None
        )
        restored = PolicyRule(
            tenant_id=db.current_org(),
            setting=r["setting"],
            enforced=r["enforced"],
            reason=r["reason"],
            effective_from=effective_from,
            replaces=r.get("replaces") if effective_from and effective_from > now else None,
            announced_at=now if effective_from is None or effective_from <= now else None,
            **target,
        )
        await _save_value(restored, r["value"])
    await audit.record(
        "policy.rolled_back", "policy", to_version, actor=actor, after={"to_version": to_version}
    )
    return await changed(actor, summary=f"rolled back to version {to_version}")


# --- choices -------------------------------------------------------------------------


async def set_choice(
    member_id: uuid.UUID, setting_key: str, value: Any, *, actor: Actor
) -> Resolved:
    """A member's own value for a setting they may change; returns the new effective value.

    Raises InvalidInputError for unknown settings, bad values and settings members may
    not choose, and SettingLockedError when the organisation enforces it.
    """
    cat = await catalogue()
    try:
        checked = cat.validate(setting_key, value)
    except CatalogueError as exc:
        raise InvalidInputError(str(exc), fields=[FieldProblem(exc.field, str(exc))]) from None
    if not cat[setting_key].member_choosable:
        raise InvalidInputError(
            f"{cat[setting_key].title} is not yours to choose",
            fields=[FieldProblem("setting", "members cannot change it")],
        )
    member = await get_by_id(Member, member_id, "member")
    current = (await effective_settings([member.id]))[member.id][setting_key]
    if current.locked:
        raise SettingLockedError(
            f"{cat[setting_key].title} is set by your organisation: {current.reason}".rstrip(": "),
            extra={"rule_id": current.source.rule_id},
        )
    stored = list(checked) if isinstance(checked, tuple) else checked
    existing = await MemberChoice.filter(member_id=member.id, setting=setting_key).first()
    before = existing.value if existing else None
    if existing is None:
        choice = MemberChoice(tenant_id=db.current_org(), member_id=member.id, setting=setting_key)
        await _save_value(choice, stored)
    elif existing.value != stored:
        await MemberChoice.filter(id=existing.id).update(value=_json_value(stored))
    else:
        return current
    await audit.record(
        "policy.choice_set",
        "member",
        member.id,
        actor=actor,
        before={setting_key: before},
        after={setting_key: stored},
    )
    await notify_policy_changed(db.current_org(), member.id)
    return (await effective_settings([member.id]))[member.id][setting_key]


async def clear_choice(member_id: uuid.UUID, setting_key: str, *, actor: Actor) -> None:
    """Remove a member's own choice (the organisation's value applies again); no-op when
    there was none. InvalidInputError for a setting that does not exist."""
    if setting_key not in await catalogue():
        raise InvalidInputError(
            f"there is no setting {setting_key!r}",
            fields=[FieldProblem("setting", "no such setting")],
        )
    await get_by_id(Member, member_id, "member")
    deleted = await MemberChoice.filter(member_id=member_id, setting=setting_key).delete()
    if deleted:
        await audit.record(
            "policy.choice_cleared", "member", member_id, actor=actor, before={setting_key: "set"}
        )
        await notify_policy_changed(db.current_org(), member_id)


# --- effective settings --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    policy_version: int
    compiled: CompiledPolicy
    #: Seconds until a scheduled rule comes into force (the snapshot is stale then).
    valid_for: float
    #: The compiled policy at each future effective time: members' coming changes.
    schedule: Schedule


#: This process's decision cache (``share_cache``, at app start): services that resolve a
#: member with no request at hand (a move's notice to the member) read compiled policies
#: from it instead of compiling the organisation's every unit, group and rule again.
_shared: DecisionCache[OrgId] | None = None


def share_cache(cache: DecisionCache[OrgId] | None) -> None:
    global _shared
    _shared = cache


def shared_cache() -> DecisionCache[OrgId] | None:
    return _shared


async def compiled_policy(
    cache: DecisionCache[OrgId] | None = None,
    *,
    store: bool = True,
    now: datetime | None = None,
) -> PolicySnapshot:
    """The current organisation's compiled policy, from ``cache`` when it is current.

    The cache is keyed on the organisation's policy and structure versions, read here in
    the caller's transaction, so a stale entry is never used even if a notification was
    missed; it expires when the next scheduled rule comes into force, so the change
    applies at its time with nothing to run. ``store=False`` for callers inside a write
    transaction: what they compiled is not kept, so a version number a rolled-back
    change used can never bring it back. ``now`` (default: the clock) compiles the
    policy as of another time, bypassing the cache (the worker's sweeps, tests).
    """
    org = db.current_org()
    row = await db.fetch_one(
        "SELECT policy_version, structure_version FROM organisations WHERE id = $1", org
    )
    if row is None:
        raise NotFoundError("the organisation does not exist")
    key = (row["policy_version"], row["structure_version"])
    if cache is not None and now is None:
        hit = cache.compiled(org, key)
        if hit is not None:
            return PolicySnapshot(row["policy_version"], hit[0], hit[2], hit[1])
    at = now or datetime.now(UTC)
    cat = await catalogue()
    units, groups = await _structure()
    stored = await PolicyRule.all()
    compiled, schedule = compile_schedule(cat, units, timed_rules(stored), groups, at)
    coming = schedule.next_change
    valid_for = coming.timestamp() - at.timestamp() if coming else float("inf")
    if cache is not None and store and now is None:
        cache.store_compiled(org, key, compiled, schedule, valid_for=valid_for)
    return PolicySnapshot(row["policy_version"], compiled, valid_for, schedule)


async def structure() -> tuple[dict[str, str | None], dict[str, int]]:
    """Every unit's parent and every group's priority (see ``_structure``)."""
    return await _structure()


async def _structure() -> tuple[dict[str, str | None], dict[str, int]]:
    """Every unit's parent and every group's priority."""
    units = {
        str(u["id"]): (str(u["parent_id"]) if u["parent_id"] else None)
        for u in await db.fetch("SELECT id, parent_id FROM units")
    }
    groups = {
        str(g["id"]): g["priority"] for g in await db.fetch("SELECT id, priority FROM groups")
    }
    return units, groups


@dataclass(frozen=True, slots=True)
class MemberFactsRow:
    member_id: uuid.UUID
    unit_id: uuid.UUID
    group_ids: tuple[str, ...]
    choices: Mapping[str, Value]


async def member_facts(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, MemberFactsRow]:
    """Unit, groups and choices of many members in one query."""
    rows = await db.fetch(
        """
        SELECT m.id, m.unit_id,
               coalesce((SELECT array_agg(gm.group_id::text) FROM group_memberships gm
                          WHERE gm.tenant_id = m.tenant_id AND gm.member_id = m.id), '{}') AS groups,
               coalesce((SELECT jsonb_object_agg(c.setting, c.value) FROM member_choices c
                          WHERE c.tenant_id = m.tenant_id AND c.member_id = m.id), '{}'::jsonb) AS choices
          FROM members m
         WHERE m.tenant_id = $1 AND m.id = ANY($2::uuid[])
        """,
        db.current_org(),
        member_ids,
    )
    result = {}
    for row in rows:
        choices = row["choices"] if isinstance(row["choices"], dict) else json.loads(row["choices"])
        result[row["id"]] = MemberFactsRow(
            row["id"],
            row["unit_id"],
            tuple(row["groups"]),
            {k: tuple(v) if isinstance(v, list) else v for k, v in choices.items()},
        )
    return result


async def effective_settings(
    member_ids: list[uuid.UUID], cache: DecisionCache[OrgId] | None = None
) -> dict[uuid.UUID, dict[str, Resolved]]:
    """Every setting of each member, with provenance; members that do not exist are absent."""
    compiled = (await compiled_policy(cache)).compiled
    facts = await member_facts(member_ids)
    return {
        mid: compiled.resolve(str(f.unit_id), f.group_ids, f.choices) for mid, f in facts.items()
    }


async def required_impact(
    setting: Setting, target_kind: TargetKind, target_id: uuid.UUID
) -> RequiredImpact:
    members = await _members_in_scope(target_kind, target_id)
    products = [p["name"] for p in await db.fetch("SELECT name FROM products ORDER BY name")]
    if setting.product:
        products = [p for p in products if p.lower() == setting.product.lower()] or [
            setting.product
        ]
    return RequiredImpact(setting.key, len(members), products, setting.off_effect)


async def _members_in_scope(target_kind: TargetKind, target_id: uuid.UUID) -> list[uuid.UUID]:
    if target_kind is TargetKind.GROUP:
        rows = await db.fetch(
            "SELECT member_id AS id FROM group_memberships WHERE tenant_id = $1 AND group_id = $2",
            db.current_org(),
            target_id,
        )
    else:
        unit = await get_by_id(Unit, target_id, "unit")
        rows = await db.fetch(
            "SELECT m.id FROM members m JOIN units u ON u.tenant_id = m.tenant_id AND u.id = m.unit_id "
            "WHERE m.tenant_id = $1 AND u.path >= $2 AND u.path < $3",
            db.current_org(),
            *subtree_bounds(unit.path),
        )
    return [r["id"] for r in rows]


@dataclass(frozen=True, slots=True)
class Impact:
    """What a rule change would do, before it is made."""

    setting: str
    members_in_scope: int
    value_changes: int
    choices_overridden: int
    by_unit: list[tuple[str, int]]
    stops_working: str
    locked_after: int


async def preview_candidate(change: RuleInput) -> Rule:
    """The rule ``change`` would save, checked as saving checks it (InvalidInputError for a
    value the setting does not take, for a target that does not exist), not saved."""
    cat = await catalogue()
    try:
        value = cat.validate_rule(change.setting, change.value)
    except CatalogueError as exc:
        raise InvalidInputError(str(exc), fields=[FieldProblem(exc.field, str(exc))]) from None
    await _check_target(change.target_kind, change.target_id)
    return Rule(
        "preview",
        change.target_kind,
        str(change.target_id),
        change.setting,
        value,
        change.enforced,
        change.reason,
    )


async def check_removal(target_kind: TargetKind, target_id: uuid.UUID, setting_key: str) -> None:
    """InvalidInputError for an unknown setting or target of a rule removal."""
    if setting_key not in await catalogue():
        raise InvalidInputError(
            f"there is no setting {setting_key!r}",
            fields=[FieldProblem("setting", "no such setting")],
        )
    await _check_target(target_kind, target_id)


async def preview_rule_change(change: RuleInput) -> Impact:
    """Resolve everyone in the change's scope before and after it, without writing."""
    candidate = await preview_candidate(change)
    return await _impact(change.target_kind, change.target_id, change.setting, candidate)


async def preview_rule_removal(
    target_kind: TargetKind, target_id: uuid.UUID, setting_key: str
) -> Impact:
    """What removing the rule for (target, setting) would do, without removing it.

    Removing a lock gives members their hidden choices back, so an admin needs the same
    preview as for setting a rule. With no such rule, nothing changes (zero counts).
    Raises InvalidInputError for an unknown setting or target.
    """
    await check_removal(target_kind, target_id, setting_key)
    return await _impact(target_kind, target_id, setting_key, None)


#: The classes of the members in a preview's scope: members with the same unit, the same
#: groups among those with rules on the setting, and the same choice for it cannot get
#: different values for that setting, so each class is resolved once. One pass over the
#: scope's members, grouped in SQL; the scope is $2 (and $5), see _UNIT_SCOPE/_GROUP_SCOPE.
#: Groups and choices are read for the scope's members only, so a part of a scope (a
#: preview job's) costs its share, not the organisation's memberships each time.
#:
#: Each member's groups are gathered by joining the tables themselves, never a CTE of
#: aggregated groups: PostgreSQL estimates a unit's subtree from statistics of every
#: organisation's units, and beside an organisation of a million members it took the
#: whole of one of 10,000 for 51 members, then joined a CTE of their groups by a nested
#: loop that read it again for every member (9 s instead of 55 ms). Joined to the tables,
#: a low estimate costs an index probe per member, and a right one a hash join.
CLASSES_SQL = """
WITH scoped AS MATERIALIZED (
  SELECT m.id, m.unit_id FROM members m WHERE m.tenant_id = $1 AND {scope}
), each_member AS (
  SELECT s.unit_id,
         coalesce(array_agg(gm.group_id::text ORDER BY gm.group_id)
                    FILTER (WHERE gm.group_id IS NOT NULL), '{{}}') AS groups,
         c.value AS choice
    FROM scoped s
    LEFT JOIN group_memberships gm
      ON gm.tenant_id = $1 AND gm.member_id = s.id AND gm.group_id = ANY($3::uuid[])
    LEFT JOIN member_choices c ON c.tenant_id = $1 AND c.member_id = s.id AND c.setting = $4
   GROUP BY s.id, s.unit_id, c.value
)
SELECT e.unit_id, u.path, e.groups, e.choice, count(*) AS n
  FROM each_member e
  JOIN units u ON u.tenant_id = $1 AND u.id = e.unit_id
 GROUP BY e.unit_id, u.path, e.groups, e.choice
"""

#: The scope of a rule on a unit (its subtree: a path range, see units.rules) or a group;
#: a part of a unit's scope is a list of its units (``scope_parts``).
_UNIT_SCOPE = (
    "m.unit_id IN (SELECT id FROM units WHERE tenant_id = $1 AND path >= $2 AND path < $5)"
)
_GROUP_SCOPE = (
    "m.id IN (SELECT member_id FROM group_memberships WHERE tenant_id = $1 AND group_id = $2)"
)
_UNITS_SCOPE = "m.unit_id = ANY($2::uuid[])"


@dataclass(frozen=True, slots=True)
class MemberClass:
    """Members who get the same value for one setting whatever its rules: same unit (its
    path of ids from the root), same groups among those that have rules on the setting,
    same choice for it (None when they made none)."""

    unit_id: str
    unit_path: tuple[str, ...]
    group_ids: tuple[str, ...]
    choice: Value | None
    members: int


async def member_classes(
    target_kind: TargetKind,
    target_id: uuid.UUID,
    setting_key: str,
    groups: Iterable[str],
    *,
    units: list[uuid.UUID] | None = None,
) -> list[MemberClass]:
    """The members in the scope of a rule on (target, setting), in classes (CLASSES_SQL);
    ``groups`` are the groups that have rules on the setting (before or after a change).
    With ``units`` (a unit target only), the members of those units alone: one part of
    the scope (``scope_parts``)."""
    scope: list[object]
    if units is not None:
        sql, scope = CLASSES_SQL.format(scope=_UNITS_SCOPE), [units]
    elif target_kind is TargetKind.UNIT:
        unit = await get_by_id(Unit, target_id, "unit")
        low, high = subtree_bounds(unit.path)
        sql, scope = CLASSES_SQL.format(scope=_UNIT_SCOPE), [low, high]
    else:
        sql, scope = CLASSES_SQL.format(scope=_GROUP_SCOPE), [target_id]
    rows = await db.fetch(sql, db.current_org(), scope[0], sorted(groups), setting_key, *scope[1:])
    classes = []
    for row in rows:
        choice = row["choice"]
        if isinstance(choice, str):
            choice = json.loads(choice)
        classes.append(
            MemberClass(
                str(row["unit_id"]),
                tuple(ancestor_ids(row["path"])),
                tuple(row["groups"]),
                tuple(choice) if isinstance(choice, list) else choice,
                int(row["n"]),
            )
        )
    return classes


@dataclass(frozen=True, slots=True)
class ScopePart:
    """Units of a unit target's subtree whose members are counted together, and about how
    many members they hold (the kept counters: a guide for progress, not a result)."""

    units: list[uuid.UUID] | None
    members: int


async def scope_parts(
    target_kind: TargetKind, target_id: uuid.UUID, *, part_members: int
) -> list[ScopePart]:
    """The scope of a rule on the target in parts of about ``part_members`` members (a unit
    holding more is a part of its own): consecutive units of a unit's subtree in path
    order, or one part (``units`` None) for a group. Reads one row per unit in scope."""
    if target_kind is TargetKind.GROUP:
        row = await db.fetch_one(
            "SELECT count(*) AS n FROM group_memberships WHERE tenant_id = $1 AND group_id = $2",
            db.current_org(),
            target_id,
        )
        return [ScopePart(None, int(row["n"]) if row else 0)]
    unit = await get_by_id(Unit, target_id, "unit")
    rows = await db.fetch(
        "SELECT id FROM units WHERE tenant_id = $1 AND path >= $2 AND path < $3 ORDER BY path",
        db.current_org(),
        *subtree_bounds(unit.path),
    )
    from tenants.units.service import member_counts  # units.service imports this module

    counts = await member_counts([r["id"] for r in rows])
    parts: list[ScopePart] = []
    ids: list[uuid.UUID] = []
    size = 0
    for row in rows:
        ids.append(row["id"])
        size += max(0, counts.get(row["id"], 0))
        if size >= part_members:
            parts.append(ScopePart(ids, size))
            ids, size = [], 0
    if ids or not parts:
        parts.append(ScopePart(ids, size))
    return parts


@dataclass(frozen=True, slots=True)
class ImpactPlan:
    """The rules of one setting before and after a change, and the priorities of the
    groups among their targets: what resolving a class needs."""

    target_kind: TargetKind
    target_id: uuid.UUID
    setting: Setting
    candidate: Rule | None
    current: list[Rule]
    after: list[Rule]
    priority: dict[str, int]


@dataclass(slots=True)
class ImpactTally:
    """Counts of the classes resolved so far (a preview adds its scope's parts in turn)."""

    scoped: int = 0
    changed: int = 0
    overridden: int = 0
    locked: int = 0
    switched_off: int = 0
    per_unit: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: (units with rules on the setting along the path, groups, choice) -> the values
    #: before and after: classes that differ only by units without such rules resolve
    #: alike (a unit without rules adds nothing to the path's answer).
    resolved: dict[tuple[Any, ...], tuple[Resolved, Resolved]] = field(default_factory=dict)

    def add(self, plan: ImpactPlan, classes: Iterable[MemberClass]) -> None:
        """Resolve each class before and after the change, by the reference resolution on
        the one setting, and count its members."""
        key = plan.setting.key
        only = Catalogue.of([plan.setting])
        ruled = {
            r.target_id for r in (*plan.current, *plan.after) if r.target_kind is TargetKind.UNIT
        }
        for c in classes:
            path = tuple(u for u in c.unit_path if u in ruled)
            seen = (path, c.group_ids, repr(c.choice))
            if seen not in self.resolved:
                facts = MemberFacts(
                    path,
                    tuple(GroupRef(g, plan.priority[g]) for g in c.group_ids),
                    {key: c.choice} if c.choice is not None else {},
                )
                self.resolved[seen] = (
                    resolve_settings(only, plan.current, facts)[key],
                    resolve_settings(only, plan.after, facts)[key],
                )
            old, new = self.resolved[seen]
            self.scoped += c.members
            if new.value != old.value:
                self.changed += c.members
                self.per_unit[c.unit_id] += c.members
                self.switched_off += c.members if plan.setting.is_off(new.value) else 0
                if (
                    old.source.kind is SourceKind.MEMBER
                    and new.source.kind is not SourceKind.MEMBER
                ):
                    self.overridden += c.members
            self.locked += c.members if new.locked else 0


async def impact_plan(
    target_kind: TargetKind, target_id: uuid.UUID, setting_key: str, candidate: Rule | None
) -> ImpactPlan:
    """The plan of a preview: the rule for (target, setting) replaced by ``candidate`` (or
    removed when it is None), the setting's other rules in force kept."""
    setting = (await catalogue())[setting_key]
    current = _in_force(await PolicyRule.filter(setting=setting_key), datetime.now(UTC))
    kept = [r for r in current if r.target_id != str(target_id)]
    after_rules = [*kept, *([candidate] if candidate else [])]
    rule_groups = {
        r.target_id for r in [*current, *after_rules] if r.target_kind is TargetKind.GROUP
    }
    priority = {
        str(g["id"]): int(g["priority"])
        for g in await db.fetch(
            "SELECT id, priority FROM groups WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            db.current_org(),
            sorted(rule_groups),
        )
    }
    return ImpactPlan(target_kind, target_id, setting, candidate, current, after_rules, priority)


async def impact_of(plan: ImpactPlan, tally: ImpactTally) -> Impact:
    """The impact the counts of ``tally`` make, with the names of the units (by name)."""
    names = {
        str(u["id"]): u["name"]
        for u in await db.fetch(
            "SELECT id, name FROM units WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            db.current_org(),
            list(tally.per_unit),
        )
    }
    by_name: dict[str, int] = defaultdict(int)
    for unit_id, count in tally.per_unit.items():
        by_name[names.get(unit_id, "?")] += count
    setting = plan.setting
    if plan.candidate is not None:
        stops_working = setting.off_effect if setting.is_off(plan.candidate.value) else ""
    else:
        stops_working = setting.off_effect if tally.switched_off else ""
    return Impact(
        setting=setting.key,
        members_in_scope=tally.scoped,
        value_changes=tally.changed,
        choices_overridden=tally.overridden,
        by_unit=sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0])),
        stops_working=stops_working,
        locked_after=tally.locked,
    )


async def _impact(
    target_kind: TargetKind,
    target_id: uuid.UUID,
    setting_key: str,
    candidate: Rule | None,
) -> Impact:
    """Everyone in the target's scope resolved, for the one setting, with the current rules
    and with the rule for (target, setting) replaced by ``candidate`` (or removed when it
    is None): once per class of members who cannot differ (``member_classes``), by the
    reference resolution on that setting alone. Costs one grouped pass over the scope in
    SQL and a resolution per class, however many members a class holds."""
    plan = await impact_plan(target_kind, target_id, setting_key, candidate)
    tally = ImpactTally()
    tally.add(plan, await member_classes(target_kind, target_id, setting_key, plan.priority))
    return await impact_of(plan, tally)


async def structure_changed() -> None:
    """Units or group priorities changed: compiled policies of this organisation are stale."""
    await db.connection().execute_query(
        "UPDATE organisations SET structure_version = structure_version + 1 WHERE id = $1",
        [db.current_org()],
    )
    await notify_policy_changed(db.current_org())


async def rules_removed_with(
    target_kind: TargetKind, target_id: uuid.UUID, *, actor: Actor
) -> None:
    """Call before deleting a unit or group: its rules go with it, as a new policy version."""
    column = "unit_id" if target_kind is TargetKind.UNIT else "group_id"
    if await PolicyRule.filter(**{column: target_id}).exists():
        from tenants.policy import schedule  # schedule imports this module

        now = datetime.now(UTC)
        for scheduled in await PolicyRule.filter(**{column: target_id}, effective_from__gt=now):
            await schedule.cancel_notices(scheduled, now=now, actor=actor)
        await PolicyRule.filter(**{column: target_id}).delete()
        await changed(actor, summary=f"rules removed with {target_kind.value} {target_id}")


async def member_changed(member_id: uuid.UUID) -> None:
    """A member's unit, groups or choices changed: cached answers for them are stale."""
    await notify_policy_changed(db.current_org(), member_id)
