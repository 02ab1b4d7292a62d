"""The token service's checks on a real database: the issuer's scopes, who must name an
issuer, and that a refusal writes nothing."""

from __future__ import annotations

import asyncpg
import pytest

from tenants import db
from tenants.actors import Actor, ActorKind, system_actor
from tenants.errors import PermissionDeniedError
from tenants.members.roles import ANY_ASSIGNER
from tenants.permissions import ROLE_PERMISSIONS, Permission, Role
from tenants.tokens import service as tokens
from tests.conftest import OrgHandle, row_counts

MEMBER = Actor(ActorKind.MEMBER, "00000000-0000-0000-0000-000000000001", "Someone")
EVERY_SCOPE = [p.value for p in Permission]


async def test_the_cli_s_issuer_gives_every_scope(org: OrgHandle) -> None:
    async with db.tenant_transaction(org.id):
        row, _ = await tokens.create_token(
            "break-glass",
            EVERY_SCOPE,
            expires_in=None,
            actor=system_actor("cli"),
            issuer=ANY_ASSIGNER,
        )
    assert sorted(row.scopes) == sorted(EVERY_SCOPE)


async def test_a_member_s_request_without_an_issuer_is_a_bug_never_allowed(org: OrgHandle) -> None:
    with pytest.raises(RuntimeError):
        async with db.tenant_transaction(org.id):
            await tokens.create_token("x", ["members:read"], expires_in=None, actor=MEMBER)


async def test_a_scope_beyond_the_issuer_is_refused_and_nothing_is_written(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    before = await row_counts(owner_conn)
    issuer = ROLE_PERMISSIONS[Role.ADMIN] | {Permission.TOKENS_WRITE}
    with pytest.raises(PermissionDeniedError) as refused:
        async with db.tenant_transaction(org.id):
            await tokens.create_token(
                "x",
                ["members:read", "settings:read"],
                expires_in=None,
                actor=MEMBER,
                issuer=issuer,
            )
    assert [f.field for f in refused.value.fields] == ["scopes"]
    assert await row_counts(owner_conn) == before
