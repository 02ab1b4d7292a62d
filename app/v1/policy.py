"""The organisation's policy rules: set, remove, preview the impact, history, diff, rollback."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, WithJsonSchema

from app.api import ApiRouter, Call
from app.v1.common import FREE_TEXT, Input, Instant, Output, SettingKey, SettingValue
from policies.resolve import TargetKind
from tenants.permissions import Permission
from tenants.policy import service as policy
from tenants.policy.models import PolicyRule

router = ApiRouter("/v1/policy", "policy")


class ReplacedOut(Output):
    value: Any
    enforced: bool
    reason: str


class RuleOut(Output):
    id: uuid.UUID
    target_kind: TargetKind
    target_id: uuid.UUID
    setting: str
    value: Any
    enforced: bool
    reason: str
    effective_from: datetime | None
    replaces: ReplacedOut | None = Field(
        None,
        description="What the rule is until ``effective_from`` (a scheduled change of a rule "
        "that was in force keeps it in force until then); null: no rule until then.",
    )
    updated_at: datetime

    @classmethod
    def of(cls, rule: PolicyRule) -> RuleOut:
        return cls(
            id=rule.id,
            target_kind=TargetKind.UNIT if rule.unit_id else TargetKind.GROUP,
            target_id=rule.unit_id or rule.group_id,
            setting=rule.setting,
            value=rule.value,
            enforced=rule.enforced,
            reason=rule.reason,
            effective_from=rule.effective_from,
            replaces=ReplacedOut.model_validate(rule.replaces) if rule.replaces else None,
            updated_at=rule.updated_at,
        )


class RuleList(Output):
    items: list[RuleOut]
    policy_version: int


class RuleIn(Input):
    target_kind: TargetKind
    target_id: uuid.UUID
    setting: SettingKey
    value: SettingValue
    enforced: bool = Field(False, description="Lock the setting for everyone below the target.")
    reason: Annotated[str, StringConstraints(max_length=1000), FREE_TEXT] = Field(
        "", description="Shown to members."
    )
    effective_from: Instant | None = Field(
        None,
        description="Applies from this moment on (RFC 3339 with a zone). A future time makes "
        "a scheduled change: the target's rule in force stays until then, members it "
        "affects are told in advance and see it as upcoming; a past time applies at once.",
    )


class RuleSet(RuleIn):
    confirm: bool = Field(False, description="Required to switch off a setting products need.")


class RuleQuery(Input):
    target_id: uuid.UUID | None = None


def _change(body: RuleIn) -> policy.RuleInput:
    return policy.RuleInput(
        body.target_kind,
        body.target_id,
        body.setting,
        body.value,
        body.enforced,
        body.reason,
        body.effective_from,
    )


async def _version() -> int:
    from tenants.organisations.service import get_current_organisation

    return (await get_current_organisation()).policy_version


@router.get(
    "/rules",
    summary="List policy rules",
    permission=Permission.POLICIES_READ,
    query=RuleQuery,
    response=RuleList,
    errors=(422,),
)
async def list_policy_rules(call: Call[Input, RuleQuery]) -> RuleList:
    rules = await policy.list_rules(target_id=call.query.target_id)
    return RuleList(items=[RuleOut.of(r) for r in rules], policy_version=await _version())


@router.put(
    "/rules",
    summary="Set the rule for a setting on a unit or group",
    permission=Permission.POLICIES_WRITE,
    body=RuleSet,
    response=RuleOut,
    errors=(409, 422),
)
async def set_policy_rule(call: Call[RuleSet, Input]) -> RuleOut:
    """Switching off a required setting answers 409 ``confirmation_required`` with the impact,
    until repeated with ``confirm: true``."""
    rule = await policy.set_rule(_change(call.body), confirm=call.body.confirm, actor=call.actor)
    return RuleOut.of(rule)


@router.delete(
    "/rules/{id}",
    summary="Remove a rule",
    permission=Permission.POLICIES_WRITE,
    status=204,
    errors=(404,),
)
async def delete_policy_rule(call: Call[Input, Input]) -> None:
    await policy.delete_rule(call.id(), actor=call.actor)


#: A pair [unit name, count]. Described without ``prefixItems``: schemathesis's response
#: check reads a tuple's schema as draft-4 ``items: [...]`` and refuses it as invalid.
UnitCount = Annotated[
    tuple[str, int],
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        }
    ),
]


class ImpactOut(Output):
    setting: str
    members_in_scope: int
    value_changes: int = Field(description="Members whose effective value would change.")
    choices_overridden: int = Field(description="Members whose own choice would be overridden.")
    locked_after: int
    by_unit: list[UnitCount] = Field(description="(unit name, members whose value changes).")
    stops_working: str = Field(
        description="What stops working for them, when the change switches it off."
    )


@router.post(
    "/preview",
    summary="What a rule change would do, without making it",
    permission=Permission.POLICIES_READ,
    body=RuleIn,
    response=ImpactOut,
    errors=(422,),
)
async def preview_policy_rule(call: Call[RuleIn, Input]) -> ImpactOut:
    impact = await policy.preview_rule_change(_change(call.body))
    return ImpactOut(
        setting=impact.setting,
        members_in_scope=impact.members_in_scope,
        value_changes=impact.value_changes,
        choices_overridden=impact.choices_overridden,
        locked_after=impact.locked_after,
        by_unit=impact.by_unit,
        stops_working=impact.stops_working,
    )


class VersionOut(Output):
    number: int
    summary: str
    actor: str
    created_at: datetime
    rules: int


class VersionList(Output):
    items: list[VersionOut]


@router.get(
    "/versions",
    summary="The history of the rule set, newest first",
    permission=Permission.POLICIES_READ,
    response=VersionList,
)
async def list_policy_versions(call: Call[Input, Input]) -> VersionList:
    return VersionList(
        items=[
            VersionOut(
                number=v.number,
                summary=v.summary,
                actor=v.actor,
                created_at=v.created_at,
                rules=len(v.rules),
            )
            for v in await policy.history()
        ]
    )


class DiffQuery(Input):
    from_version: int = Field(alias="from", ge=0, le=2**31 - 1)
    to_version: int = Field(alias="to", ge=0, le=2**31 - 1)


class ChangeOut(Output):
    kind: str
    target_kind: str
    target_id: str
    setting: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class DiffOut(Output):
    changes: list[ChangeOut]


@router.get(
    "/diff",
    summary="What changed between two versions",
    permission=Permission.POLICIES_READ,
    query=DiffQuery,
    response=DiffOut,
    errors=(404, 422),
)
async def diff_policy_versions(call: Call[Input, DiffQuery]) -> DiffOut:
    changes = await policy.diff_versions(call.query.from_version, call.query.to_version)
    return DiffOut(
        changes=[
            ChangeOut(
                kind=c.kind.value,
                target_kind=c.target_kind,
                target_id=c.target_id,
                setting=c.setting,
                before=dict(c.before) if c.before else None,
                after=dict(c.after) if c.after else None,
            )
            for c in changes
        ]
    )


class RollbackIn(Input):
    version: int = Field(
        ge=0, le=2**31 - 1, description="The version whose rules to restore (0: no rules)."
    )


class RollbackOut(Output):
    policy_version: int


@router.post(
    "/rollback",
    summary="Restore the rules of an earlier version (as a new version)",
    permission=Permission.POLICIES_WRITE,
    body=RollbackIn,
    response=RollbackOut,
    errors=(404, 422),
)
async def rollback_policy(call: Call[RollbackIn, Input]) -> RollbackOut:
    return RollbackOut(policy_version=await policy.rollback(call.body.version, actor=call.actor))
