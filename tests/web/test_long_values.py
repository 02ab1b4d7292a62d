"""The longest values the service accepts fit wherever it keeps them. Who did something is
kept as ``name <address>``, sealed (encrypted, about twice as long) when it is a member:
a member with a 140-letter name, or 44 Japanese characters, could not sign in (their
sign-in's audit event did not fit its column: a 500), nor anyone on IPv6 (the sealed
address did not fit either)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.conftest import OrgHandle, make_member
from tests.web.flows import PASSWORD, asgi_client, set_local_sign_in, set_password

#: The longest name the API takes (200 characters), three bytes each in UTF-8.
LONGEST_NAME = "田中" * 100
IPV6 = "2001:db8:85a3:1234:5678:8a2e:370:7334"


async def test_a_member_with_the_longest_name_signs_in_from_ipv6_and_asks_for_their_data(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await set_local_sign_in(org.id, True)
    local = "x" * 60 + uuid.uuid4().hex[:4]
    member = await make_member(org, name=LONGEST_NAME, email=f"{local}@{org.slug}.example")
    await set_password(org.id, member["id"], PASSWORD)
    async with asgi_client(app, address=IPV6) as browser:
        csrf = await browser.signed_in(org.slug, member["email"])
        asked = await browser.post(
            "/account/privacy-requests",
            {"csrf": csrf, "kind": "access", "message": "Everything you hold on me, please."},
        )
        assert asked.status_code == 303, asked.text[:500]
    events = await owner_conn.fetch(
        "SELECT action, length(actor_display) AS shown, length(client_addr) AS addr"
        " FROM audit_events WHERE tenant_id = $1 AND actor = $2",
        org.id,
        f"member:{member['id']}",
    )
    actions = {e["action"] for e in events}
    assert {"session.signed_in", "privacy_request.received"} <= actions, actions
    # Sealed: longer than the 300 characters the column used to hold.
    assert max(e["shown"] for e in events) > 300
    assert max(e["addr"] for e in events) > 100
    timeline = await owner_conn.fetchval(
        "SELECT actor_display FROM privacy_request_events WHERE tenant_id = $1"
        " ORDER BY created_at LIMIT 1",
        org.id,
    )
    assert timeline == f"{LONGEST_NAME} <{member['email']}>"
