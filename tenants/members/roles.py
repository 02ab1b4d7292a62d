"""The role rules of a member, as plain functions: an organisation always keeps an owner."""

from __future__ import annotations

from collections.abc import Iterable

from tenants.errors import ConflictError, FieldProblem, PermissionDeniedError
from tenants.permissions import ROLE_PERMISSIONS, Permission, Role, may_grant, permissions_of

#: Members with a role beyond ``member``: ``members.staff`` (generated from ``roles``) and
#: the partial index ``members_staff`` on it (migration 0029). A lookup of owners, admins
#: or officers among the members writes it beside its role test (``roles ?| …`` alone
#: cannot use an index), so it reads the few members in that index instead of every
#: member of the organisation.
STAFF = "staff"

#: What people call each role: the one source of role names on pages, in messages and in
#: mail (the codes stay the values in forms, the API, CSV and audit events).
ROLE_NAMES: dict[Role, str] = {
    Role.OWNER: "Owner",
    Role.ADMIN: "Admin",
    Role.HELPDESK: "Helpdesk",
    Role.PRIVACY_OFFICER: "Privacy officer",
    Role.AUDITOR: "Auditor",
    Role.MEMBER: "Member",
}


def role_name(role: Role | str) -> str:
    """The role's name as people read it (``privacy_officer`` → "Privacy officer"); a code
    that names no role (a role since retired, kept in old rows) is returned as it is."""
    try:
        return ROLE_NAMES[Role(role)]
    except ValueError:
        return str(role)


def role_names(roles: Iterable[Role | str]) -> str:
    """The roles' names joined with commas, in the order given ("Admin, Privacy officer")."""
    return ", ".join(role_name(r) for r in roles)


def drops_owner(before: Iterable[str], after: Iterable[str]) -> bool:
    """True when the change takes the owner role away from the member."""
    return Role.OWNER.value in set(before) and Role.OWNER.value not in set(after)


def check_keeps_owner(before: Iterable[str], after: Iterable[str], other_owners: int) -> None:
    """Refuse taking the owner role from the organisation's last owner (nobody could then
    manage tokens, the organisation's settings, or give the role back).

    Raises ConflictError naming the ``roles`` field; returns None when the change is fine.
    """
    if drops_owner(before, after) and other_owners < 1:
        raise ConflictError(
            "an organisation always keeps an owner: make someone else owner first",
            fields=[FieldProblem("roles", "would leave the organisation without an owner")],
        )


#: The assigner of work nobody did over HTTP (the CLI, the demo seed, a decided access
#: review): what it gives was decided by someone who could.
ANY_ASSIGNER: frozenset[Permission] = frozenset(Permission)


def may_assign(assigner: frozenset[Permission], role: Role) -> bool:
    """Whether someone holding ``assigner`` may give or take away ``role``: an owner (or
    anyone holding all an owner holds) any role; anyone else only a role all of whose
    permissions they hold themselves, so that nobody can raise their own or another's
    powers above their own (a helpdesk made itself owner through the roles form)."""
    return may_grant(assigner, ROLE_PERMISSIONS[role])


def check_may_assign(
    assigner: frozenset[Permission], before: Iterable[str], after: Iterable[str]
) -> None:
    """Refuse a change of roles that gives or takes away a role ``assigner`` may not
    (``may_assign``). Raises PermissionDeniedError naming the ``roles`` field."""
    beyond = sorted(r for r in set(before) ^ set(after) if not may_assign(assigner, Role(r)))
    if beyond:
        named = role_names(beyond)
        raise PermissionDeniedError(
            f"you cannot give or take away the role {named}: it holds "
            "permissions you do not have; ask an owner",
            fields=[FieldProblem("roles", f"{named}: beyond your own permissions")],
        )


def may_act_for(editor: frozenset[Permission], target_roles: Iterable[str]) -> bool:
    """Whether someone holding ``editor`` may act for a member holding ``target_roles``
    (``check_may_act_for``): they hold all of the member's permissions."""
    return may_grant(editor, permissions_of([r for r in target_roles if r in set(Role)]))


def check_may_act_for(
    editor: frozenset[Permission], target_roles: Iterable[str], *, doing: str, field: str
) -> None:
    """Refuse ``doing`` (changing the address a member signs in with, sending them a
    sign-in link) to someone who holds permissions the editor does not: whoever controls
    a member's sign-in holds the member's powers, so a helpdesk that could point an
    owner's address at its own mailbox and send it a sign-in link became owner. An
    owner may act for anyone; anyone else for members whose permissions they hold all of
    (``may_grant``, the rule of giving roles). Raises PermissionDeniedError naming
    ``field``."""
    if may_act_for(editor, target_roles):
        return
    target = [r for r in target_roles if r in set(Role)]
    beyond = role_names(r for r in target if not may_assign(editor, Role(r)))
    raise PermissionDeniedError(
        f"you cannot {doing} a member who holds the role {beyond}: it holds permissions "
        "you do not have; ask an owner",
        fields=[FieldProblem(field, f"the member is {beyond}: beyond your own permissions")],
    )
