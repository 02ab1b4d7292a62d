"""The organisation's data-access policy: how long access may last, whether emergency
access is allowed, whether members are emailed about accesses, and how long disclosure
to a member may be delayed. One row per organisation, created on the first change."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tenants import db
from tenants.access import rules
from tenants.access.models import AccessPolicy
from tenants.access.rules import PolicyRules
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import InvalidInputError

POLICY_FIELDS = tuple(PolicyRules.__dataclass_fields__)


async def get_policy() -> PolicyRules:
    """The organisation's access policy, or the defaults when it never set one."""
    row = await AccessPolicy.filter(tenant_id=db.current_org()).first()
    return rules.DEFAULT_POLICY if row is None else _policy_of(row)


async def update_policy(changes: dict[str, Any], *, actor: Actor) -> PolicyRules:
    """Change some fields of the policy (created on first change); early return when
    nothing changes. InvalidInputError when the result is inconsistent."""
    row = await AccessPolicy.filter(tenant_id=db.current_org()).select_for_update().first()
    before = await get_policy() if row is None else _policy_of(row)
    after = PolicyRules(**{**asdict(before), **changes})
    problems = rules.policy_problems(after)
    if problems:
        raise InvalidInputError("the access policy would be inconsistent", fields=problems)
    old, new = audit.changed_fields(asdict(before), asdict(after))
    if not new:
        return before
    if row is None:
        await AccessPolicy.create(tenant_id=db.current_org(), **asdict(after))
    else:
        for name, value in new.items():
            setattr(row, name, value)
        await row.save(update_fields=[*new.keys(), "updated_at"])
    await audit.record(
        "access_policy.updated",
        "access_policy",
        db.current_org(),
        actor=actor,
        before=old,
        after=new,
    )
    return after


def _policy_of(row: AccessPolicy) -> PolicyRules:
    return PolicyRules(**{name: getattr(row, name) for name in POLICY_FIELDS})
