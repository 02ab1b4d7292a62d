"""Driving the web face like a browser without one: sign-in flows, forms and their CSRF
tokens, and reading what the app recorded (sessions, audit events) as the database owner.

A ``WebClient`` is one browser: it keeps cookies and presents its own client address, so
the per-address sign-in limiter of one test never counts another test's attempts. Against
the live server the address travels in X-Forwarded-For (uvicorn trusts it from 127.0.0.1);
in process it is the ASGI client address.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import asyncpg
import httpx

from app.settings import Settings
from tenants import db
from tenants.actors import Actor, system_actor
from tenants.ids import OrgId
from tenants.members.models import Member
from tenants.organisations import service as organisations
from tenants.privacy import shredding
from tenants.secrets import SecretBox
from tenants.sessions import passwords
from tenants.sso import service as sso
from tests.support.oidc_provider import login_with_browserless_flow

ACTOR: Actor = system_actor("web-tests")
#: The password the tests give members who sign in with one.
PASSWORD = "correct-horse-battery-staple"
SESSION_COOKIE = "tenantry_session"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address (10.0.0.0/8) no other WebClient of this test session uses."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def csrf_in(page: str) -> str:
    match = CSRF_FIELD.search(page)
    assert match, f"no CSRF field in the page:\n{page[:2000]}"
    return html.unescape(match.group(1))


def text_of(page: str) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def title_of(page: str) -> str:
    """The page's <title>, entities decoded."""
    match = re.search(r"<title>([^<]*)</title>", page)
    assert match, "the page has no title"
    return html.unescape(match.group(1))


class _DescribedBy(HTMLParser):
    """Each element's aria-describedby as a browser reads it: the first of the attribute
    when it is written twice (the second is dropped, as the HTML parser says)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str | None, list[str], bool, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        described = [v or "" for k, v in attrs if k == "aria-describedby"]
        if described:
            self.elements.append(
                (
                    dict(attrs).get("id"),
                    described[0].split(),
                    ("aria-invalid", "true") in attrs,
                    len(described),
                )
            )


def described_by(page: str, target_id: str, *, invalid: bool = True) -> list[str]:
    """The ids of the elements that ``target_id`` (an error or a hint) describes, as
    assistive technology finds them; checks no element of the page writes aria-describedby
    twice and, with ``invalid``, that each such element says aria-invalid="true"."""
    parser = _DescribedBy()
    parser.feed(page)
    twice = [e for e in parser.elements if e[3] > 1]
    assert not twice, f"aria-describedby written twice on {twice}"
    found = [e for e in parser.elements if target_id in e[1]]
    assert found, f"nothing points at #{target_id}"
    if invalid:
        assert all(e[2] for e in found), f"#{target_id} describes a field not marked invalid"
    return [e[0] or "" for e in found]


@dataclass
class WebClient:
    """One browser talking to the app (cookies kept, redirects not followed)."""

    http: httpx.AsyncClient
    address: str

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post(
        self, path: str, data: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.http.post(path, data=data or {}, **kw)

    async def login_csrf(self, slug: str) -> str:
        """Open the organisation's sign-in page (sets the browser cookie) and read its token."""
        page = await self.get(f"/login/{slug}")
        assert page.status_code == 200, page.text
        return csrf_in(page.text)

    async def start_sso(self, slug: str, *, next_path: str = "") -> str:
        """Press "Continue with …'s sign-in": the identity provider's authorization URL."""
        csrf = await self.login_csrf(slug)
        response = await self.post(f"/login/{slug}/sso", {"csrf": csrf, "next": next_path})
        assert response.status_code == 303, response.text
        return response.headers["location"]

    async def sso_sign_in(self, slug: str, login: str, *, next_path: str = "") -> httpx.Response:
        """The whole OIDC sign-in at the real provider; the app's answer to the callback."""
        callback = await self.sso_callback_url(slug, login, next_path=next_path)
        return await self.get(callback)

    async def sso_callback_url(self, slug: str, login: str, *, next_path: str = "") -> str:
        """Sign in at the provider and return the callback URL it sends the browser to (unvisited)."""
        authorization_url = await self.start_sso(slug, next_path=next_path)
        return await asyncio.to_thread(login_with_browserless_flow, authorization_url, login)

    async def password_sign_in(
        self,
        slug: str,
        email: str,
        password: str,
        *,
        next_path: str = "",
        break_glass: bool = False,
    ) -> httpx.Response:
        csrf = await self.login_csrf(slug)
        form = {"csrf": csrf, "email": email, "password": password, "next": next_path}
        if break_glass:
            form["break_glass"] = "1"
        return await self.post(f"/login/{slug}/password", form)

    async def signed_in(self, slug: str, email: str, password: str = PASSWORD) -> str:
        """Sign in by password (set beforehand, e.g. ``set_password``), which must succeed;
        the session's CSRF token."""
        response = await self.password_sign_in(slug, email, password)
        assert response.status_code == 303, response.text
        return await self.csrf_of("/account")

    async def csrf_of(self, path: str = "/account") -> str:
        """The session's CSRF token, read from a page's form."""
        page = await self.get(path)
        assert page.status_code == 200, f"{path}: {page.status_code} {page.headers.get('location')}"
        return csrf_in(page.text)

    async def sign_out(self) -> httpx.Response:
        return await self.post("/logout", {"csrf": await self.csrf_of()})


@asynccontextmanager
async def live_client(base_url: str, *, address: str | None = None) -> AsyncIterator[WebClient]:
    """A browser-like client of the live server, presenting its own client address."""
    address = address or fresh_address()
    async with httpx.AsyncClient(
        base_url=base_url, headers={"X-Forwarded-For": address}, follow_redirects=False, timeout=30
    ) as http:
        yield WebClient(http, address)


@asynccontextmanager
async def asgi_client(app: Any, *, address: str | None = None) -> AsyncIterator[WebClient]:
    """A browser-like client of the app in process (no server), with its own client address."""
    address = address or fresh_address()
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tenantry.test", follow_redirects=False
    ) as http:
        yield WebClient(http, address)


# --- set-up through the services ------------------------------------------------------------


async def configure_sso(
    settings: Settings,
    org_id: OrgId,
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    jit_provisioning: bool = False,
    default_unit_id: uuid.UUID | None = None,
    allowed_domains: list[str] | None = None,
    sign_out_at_provider: bool = False,
) -> None:
    box = SecretBox(settings.secret_key, "sso-client-secrets")
    changes = {
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ["openid", "email", "profile"],
        "jit_provisioning": jit_provisioning,
        "default_unit_id": default_unit_id,
        "allowed_domains": allowed_domains or [],
        "enabled": True,
        "sign_out_at_provider": sign_out_at_provider,
    }
    async with db.tenant_transaction(org_id):
        # Set-up means the change: it confirms whatever sign-ins it takes away.
        preview = await sso.preview_change(dict(changes))
        await sso.save_connection(
            changes, box=box, actor=ACTOR, confirm_losing=preview.losing or None
        )


async def set_password(
    org_id: OrgId, member_id: uuid.UUID | str, password: str, *, break_glass: bool = False
) -> None:
    async with db.tenant_transaction(org_id):
        member = await Member.get(id=member_id)
        await passwords.set_password(member, password, break_glass=break_glass, actor=ACTOR)


async def set_local_sign_in(org_id: OrgId, enabled: bool) -> None:
    async with db.tenant_transaction(org_id):
        await organisations.set_local_sign_in(enabled, actor=ACTOR)


# --- reading what happened (as the database owner, across row-level security) ---------------


@dataclass(frozen=True)
class AuditRow:
    action: str
    target_id: str
    after: dict[str, Any]
    actor: str


async def audit_events(conn: asyncpg.Connection, org_id: OrgId, action: str) -> list[AuditRow]:
    rows = await conn.fetch(
        "SELECT action, target_id, after, actor FROM audit_events WHERE tenant_id = $1 AND action = $2 "
        "ORDER BY id",
        org_id,
        action,
    )
    keys = {
        str(k["member_id"]): bytes(k["key"])
        for k in await conn.fetch("SELECT member_id, key FROM member_keys WHERE tenant_id = $1", org_id)
    }

    def opened(after: dict[str, Any]) -> dict[str, Any]:
        return {
            k: shredding.unseal(keys.get(shredding.sealed_for(v) or ""), str(org_id), v)
            if shredding.sealed_for(v) else v
            for k, v in after.items()
        }

    return [
        AuditRow(
            r["action"], r["target_id"], opened(json.loads(r["after"])) if r["after"] else {}, r["actor"]
        )
        for r in rows
    ]


async def live_sessions(conn: asyncpg.Connection, member_id: uuid.UUID | str) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM sessions WHERE member_id = $1 AND revoked_at IS NULL",
        uuid.UUID(str(member_id)),
    )
    return count


async def member_row(conn: asyncpg.Connection, org_id: OrgId, email: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM members WHERE tenant_id = $1 AND email = $2", org_id, email
    )
    return row


async def sign_in_log(conn: asyncpg.Connection, org_id: OrgId) -> list[asyncpg.Record]:
    """The organisation's sign-in log, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM sign_ins WHERE tenant_id = $1 ORDER BY at, created_at", org_id
    )
    return rows
