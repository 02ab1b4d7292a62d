"""The role matrix: every role signs in (by password) and tries every console route, and the
answer matches the role table in tenants.permissions, computed from it, not restated here.
Spot checks then say the policy in plain words.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.settings import Settings
from app.web.pages import CONSOLE_NAV
from tenants.members.roles import ROLE_NAMES
from tenants.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.conftest import OrgHandle, make_member, make_product, make_unit, row_counts
from tests.support.dns_server import Zone
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    configure_sso,
    set_local_sign_in,
    set_password,
    text_of,
)

UNREACHABLE_ISSUER = "http://127.0.0.1:9"  # the discard port: connection refused at once


@dataclass
class Targets:
    """What the console actions act on, made fresh for each role."""

    root: str
    member: str
    rename: str
    move: str
    move_under: str
    delete: str
    #: Targets of later features by the name their paths use (``{product}``): see make_targets.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def rule(self) -> dict[str, str]:
        """A policy rule on the root unit, as the rules form sends it."""
        return {
            "target": f"unit:{self.root}",
            "setting": "advertising.personalised_ads",
            "value": "off",
        }


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str  # may name {member}, {rename}, {move}, {delete}
    permission: Permission | None
    form: Callable[[Targets], dict[str, str]] = lambda t: {}

    def url(self, t: Targets) -> str:
        return self.path.format(
            member=t.member, rename=t.rename, move=t.move, delete=t.delete, **t.extra
        )

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


#: Every console page and action and the permission it needs. The pages come from the
#: navigation itself; a test below checks that no console route of the app is missing.
ROUTES: list[ConsoleRoute] = [
    *[ConsoleRoute("GET", path, permission) for _, path, permission in CONSOLE_NAV],
    ConsoleRoute("GET", "/console/members/{member}", Permission.MEMBERS_READ),
    ConsoleRoute("GET", "/account", None),
    ConsoleRoute(
        "POST",
        "/console/units",
        Permission.UNITS_WRITE,
        lambda t: {"parent_id": t.root, "name": f"Made {uuid.uuid4().hex[:6]}"},
    ),
    ConsoleRoute("GET", "/console/units/{rename}/edit", Permission.UNITS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/units/{rename}/rename",
        Permission.UNITS_WRITE,
        lambda t: {"name": f"Renamed {uuid.uuid4().hex[:6]}"},
    ),
    ConsoleRoute(
        "POST",
        "/console/units/{move}/move",
        Permission.UNITS_WRITE,
        lambda t: {"parent_id": t.move_under},
    ),
    ConsoleRoute("POST", "/console/units/{delete}/delete", Permission.UNITS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/members/{member}/transition",
        Permission.MEMBERS_LIFECYCLE,
        lambda t: {"action": "suspend", "reason": "role matrix"},
    ),
    ConsoleRoute("POST", "/console/members/{member}/sign-out", Permission.MEMBERS_SESSIONS),
    # Directory management (console/member_forms, member_bulk, groups, lookups).
    ConsoleRoute("GET", "/console/members/new", Permission.MEMBERS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/members",
        Permission.MEMBERS_WRITE,
        lambda t: {
            "name": "Added Person",
            "email": f"added-{uuid.uuid4().hex[:8]}@matrix.example",
            "unit_id": t.root,
            "status": "active",
            "outside_domain_ok": "matrix.example",
        },
    ),
    ConsoleRoute("POST", "/console/members/{editable}/invite", Permission.MEMBERS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/members/{editable}/details",
        Permission.MEMBERS_WRITE,
        lambda t: {"name": f"Edited {uuid.uuid4().hex[:6]}", "email": t.extra["editable_email"]},
    ),
    ConsoleRoute(
        "POST",
        "/console/members/{editable}/move",
        Permission.MEMBERS_WRITE,
        lambda t: {"unit_id": t.move_under, "confirmed": "1"},
    ),
    ConsoleRoute(
        "POST",
        "/console/members/{editable}/roles",
        Permission.MEMBERS_WRITE,
        # A role every role with members:write holds all of (tenants.members.roles).
        lambda t: {"role_helpdesk": "1"},
    ),
    ConsoleRoute(
        "POST",
        "/console/members/{editable}/products",
        Permission.PRODUCTS_WRITE,
        lambda t: {"product_id": t.extra["product"], "op": "assign"},
    ),
    ConsoleRoute(
        "POST",
        "/console/members/{editable}/groups",
        Permission.GROUPS_WRITE,
        lambda t: {"group_id": t.extra["group"], "op": "add"},
    ),
    ConsoleRoute(
        "POST",
        "/console/members/bulk",
        Permission.MEMBERS_WRITE,
        lambda t: {
            "action": "move",
            f"member_{t.extra['editable']}": "1",
            "unit_id": t.root,
            "confirmed": "1",
        },
    ),
    ConsoleRoute("GET", "/console/members/export.csv", Permission.MEMBERS_READ),
    ConsoleRoute("GET", "/console/members/import", Permission.MEMBERS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/members/import",
        Permission.MEMBERS_WRITE,
        lambda t: {"csv_text": "email,name\nimported@matrix.example,Imported Person\n"},
    ),
    ConsoleRoute(
        "POST",
        "/console/groups",
        Permission.GROUPS_WRITE,
        lambda t: {"name": f"Group {uuid.uuid4().hex[:6]}", "priority": "1"},
    ),
    ConsoleRoute("GET", "/console/groups/{group}", Permission.GROUPS_READ),
    ConsoleRoute(
        "POST",
        "/console/groups/{group}",
        Permission.GROUPS_WRITE,
        lambda t: {"name": f"Renamed group {uuid.uuid4().hex[:6]}", "priority": "2"},
    ),
    ConsoleRoute(
        "POST",
        "/console/groups/{group}/members",
        Permission.GROUPS_WRITE,
        lambda t: {"member_id": t.member, "op": "add"},
    ),
    ConsoleRoute(
        "POST",
        "/console/groups/{doomed}/delete",
        Permission.GROUPS_WRITE,
        lambda t: {"confirmed": "1"},
    ),
    ConsoleRoute("GET", "/console/pick/members?member_id_q=Target", Permission.MEMBERS_READ),
    ConsoleRoute("GET", "/console/pick/units?unit_id_q=Mo", Permission.UNITS_READ),
    ConsoleRoute("GET", "/console/pick/groups?group_id_q=Te", Permission.GROUPS_READ),
    ConsoleRoute("GET", "/console/search?q=Target", Permission.CONSOLE_ACCESS),
    ConsoleRoute("GET", "/console/audit/export?format=csv&action=member.", Permission.AUDIT_READ),
    ConsoleRoute("POST", "/console/audit/verify", Permission.AUDIT_READ),
    ConsoleRoute("GET", "/console/audit/verification", Permission.AUDIT_READ),
    ConsoleRoute(
        "POST",
        "/console/settings/sso",
        Permission.SSO_WRITE,
        lambda t: {
            "issuer": UNREACHABLE_ISSUER,
            "client_id": "matrix-client",
            "client_secret": "matrix-secret-0123456789",
            "enabled": "on",
        },
    ),
    ConsoleRoute("POST", "/console/settings/sso/test", Permission.SSO_WRITE),
    # After the save above, so there is a previous configuration to restore.
    ConsoleRoute("POST", "/console/settings/sso/restore", Permission.SSO_WRITE),
    ConsoleRoute("GET", "/console/sign-ins.csv", Permission.AUDIT_READ),
    ConsoleRoute("GET", "/console/holds/{held}", Permission.CONTENT_HOLD),
    ConsoleRoute("GET", "/console/members/{member}/content", Permission.CONTENT_READ),
    # Asked first (no ``confirmed``): the confirmation page, nothing lifted.
    ConsoleRoute(
        "POST", "/console/holds/{held}/lift", Permission.CONTENT_HOLD, lambda t: {"reason": "matrix"}
    ),
    ConsoleRoute(
        "POST",
        "/console/holds/{held}",
        Permission.CONTENT_HOLD,
        lambda t: {
            "member_text": "Kept while a claim is open.",
            "review_on": (datetime.now(UTC).date() + timedelta(days=365)).isoformat(),
            "reason": "role matrix",
        },
    ),
    ConsoleRoute(
        "POST", "/console/domains", Permission.ORGANISATION_WRITE, lambda t: {"name": "new.example"}
    ),
    ConsoleRoute(
        "POST",
        "/console/domains/verify",
        Permission.ORGANISATION_WRITE,
        lambda t: {"name": t.extra["domain_to_verify"]},
    ),
    ConsoleRoute(
        "POST",
        "/console/domains/remove",
        Permission.ORGANISATION_WRITE,
        lambda t: {"name": t.extra["domain_to_remove"], "confirmed": "1"},
    ),
    ConsoleRoute(
        "POST",
        "/console/settings/sign-in",
        Permission.ORGANISATION_WRITE,
        lambda t: {"local_sign_in": "on"},
    ),
    ConsoleRoute(
        "POST",
        "/console/settings/policy-notice",
        Permission.ORGANISATION_WRITE,
        lambda t: {"policy_notice_days": "10"},
    ),
    ConsoleRoute(
        "POST",
        "/console/settings/time-zone",
        Permission.ORGANISATION_WRITE,
        # A zone whose days are UTC days: later routes of the matrix name UTC dates.
        lambda t: {"time_zone": "Atlantic/Reykjavik"},
    ),
    ConsoleRoute(
        "POST", "/console/identity/backend", Permission.SSO_WRITE, lambda t: {"kind": "local"}
    ),
    ConsoleRoute("POST", "/console/identity/reconcile", Permission.SSO_WRITE),
    ConsoleRoute("POST", "/console/identity/setup", Permission.SSO_WRITE),
    ConsoleRoute(
        "POST",
        "/console/identity/transmitter",
        Permission.SSO_WRITE,
        lambda t: {
            "issuer": "https://ssf.matrix.example",
            "jwks_uri": "https://ssf.matrix.example/jwks",
            "audience": "tenantry",
            "enabled": "on",
        },
    ),
    # Provisioning (SCIM): a token made, another rotated then revoked, the rules saved.
    ConsoleRoute(
        "POST", "/console/provisioning/tokens", Permission.SCIM_WRITE, lambda t: {"name": "matrix"}
    ),
    ConsoleRoute(
        "POST",
        "/console/provisioning/tokens/rotate",
        Permission.SCIM_WRITE,
        lambda t: {"token_id": t.extra["scim_token"]},
    ),
    ConsoleRoute(
        "POST",
        "/console/provisioning/tokens/revoke",
        Permission.SCIM_WRITE,
        lambda t: {"token_id": t.extra["scim_token"], "confirmed": "1"},
    ),
    ConsoleRoute(
        "POST",
        "/console/provisioning/rules",
        Permission.SCIM_WRITE,
        lambda t: {"unit_attribute": "department", "deprovisioning": "suspend"},
    ),
    # API tokens: the form, a token made (shown once), another revoked after confirming.
    ConsoleRoute("GET", "/console/api-tokens/new", Permission.TOKENS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/api-tokens/new",
        Permission.TOKENS_WRITE,
        lambda t: {"name": "matrix", "scopes": "members:read", "expires": "7"},
    ),
    ConsoleRoute(
        "POST",
        "/console/api-tokens/{apitoken}/revoke",
        Permission.TOKENS_WRITE,
        lambda t: {"confirmed": "1"},
    ),
    ConsoleRoute("GET", "/console/policies/history", Permission.POLICIES_READ),
    ConsoleRoute("GET", "/console/policies/diff", Permission.POLICIES_READ),
    ConsoleRoute("GET", "/console/policies/member?q=target", Permission.POLICIES_READ),
    # In this order: preview a rule, make it (version 1), remove it (2), go back to 1 (3).
    ConsoleRoute("POST", "/console/policies/preview", Permission.POLICIES_WRITE, lambda t: t.rule),
    ConsoleRoute(
        "POST",
        "/console/policies/rules",
        Permission.POLICIES_WRITE,
        lambda t: {**t.rule, "enforced": "on", "reason": "role matrix"},
    ),
    ConsoleRoute(
        "POST", "/console/policies/rules/remove", Permission.POLICIES_WRITE, lambda t: t.rule
    ),
    ConsoleRoute(
        "POST", "/console/policies/rollback", Permission.POLICIES_WRITE, lambda t: {"version": "1"}
    ),
    ConsoleRoute("GET", "/console/products/{product}/webhooks", Permission.PRODUCTS_READ),
    ConsoleRoute("GET", "/console/products/{product}/webhooks/log", Permission.PRODUCTS_READ),
    ConsoleRoute(
        "POST",
        "/console/products/{product}/webhooks/url",
        Permission.PRODUCTS_WRITE,
        lambda t: {"url": "https://hooks.example.com/matrix"},
    ),
    ConsoleRoute("POST", "/console/products/{product}/webhooks/rotate", Permission.PRODUCTS_WRITE),
    ConsoleRoute("POST", "/console/products/{product}/webhooks/clear", Permission.PRODUCTS_WRITE),
    ConsoleRoute("POST", "/console/webhook-deliveries/{delivery}/retry", Permission.PRODUCTS_WRITE),
    # Departures: the policy; a running departure (retry its dead step, then reinstate);
    # starting another member's; the dead-letter list's retry.
    ConsoleRoute("GET", "/console/departures/policy", Permission.DEPARTURES_READ),
    ConsoleRoute(
        "POST",
        "/console/departures/policy",
        Permission.DEPARTURES_WRITE,
        lambda t: {
            "default_action": "archive",
            "retention_days": "30",
            "export_window_days": "14",
            "personal_outcome": "delete",
        },
    ),
    ConsoleRoute("GET", "/console/departures/{departure}", Permission.DEPARTURES_READ),
    ConsoleRoute("GET", "/console/departures/{departure}/progress", Permission.DEPARTURES_READ),
    ConsoleRoute(
        "POST",
        "/console/departures/{departure}/retry",
        Permission.DEPARTURES_WRITE,
        lambda t: {"job": t.extra["departure_job"]},
    ),
    ConsoleRoute(
        "POST",
        "/console/departures/{departure}/reinstate",
        Permission.DEPARTURES_WRITE,
        lambda t: {"reason": "role matrix"},
    ),
    ConsoleRoute("GET", "/console/members/{starter}/departure", Permission.DEPARTURES_READ),
    ConsoleRoute(
        "POST",
        "/console/members/{starter}/departure/preview",
        Permission.DEPARTURES_WRITE,
        lambda t: {"last_day": t.extra["today"]},
    ),
    ConsoleRoute(
        "POST",
        "/console/members/{starter}/departure",
        Permission.DEPARTURES_WRITE,
        lambda t: {"last_day": t.extra["today"], "reason": "role matrix"},
    ),
    ConsoleRoute("POST", "/console/jobs/{job}/retry", Permission.JOBS_WRITE),
    # Data access: requesting, then one request approved, one denied, one withdrawn, an
    # emergency access reviewed, and a grant's disclosure delayed and shown again.
    ConsoleRoute("GET", "/console/data-access/new", Permission.ACCESS_READ),
    ConsoleRoute("GET", "/console/data-access/log", Permission.ACCESS_READ),
    ConsoleRoute("GET", "/console/data-access/policy", Permission.ACCESS_READ),
    ConsoleRoute(
        "POST",
        "/console/data-access/new",
        Permission.ACCESS_REQUEST,
        lambda t: {
            "subject": "member",
            "member_email": t.extra["accessed_email"],
            "categories": "files",
            "all_products": "1",
            "justification": "Role matrix: a justified request.",
            "duration_hours": "8",
        },
    ),
    ConsoleRoute("GET", "/console/data-access/grants/{approvable}", Permission.ACCESS_READ),
    ConsoleRoute(
        "POST", "/console/data-access/grants/{approvable}/approve", Permission.ACCESS_APPROVE
    ),
    ConsoleRoute(
        "POST",
        "/console/data-access/grants/{deniable}/deny",
        Permission.ACCESS_APPROVE,
        lambda t: {"reason": "role matrix"},
    ),
    ConsoleRoute(
        "POST",
        "/console/data-access/grants/{revocable}/revoke",
        Permission.ACCESS_REVOKE,
        lambda t: {"reason": "role matrix"},
    ),
    ConsoleRoute(
        "POST",
        "/console/data-access/grants/{emergency}/review",
        Permission.ACCESS_APPROVE,
        lambda t: {"note": "role matrix"},
    ),
    ConsoleRoute(
        "POST",
        "/console/data-access/grants/{delayable}/delay",
        Permission.ACCESS_APPROVE,
        lambda t: {"until": t.extra["delay_until"], "reason": "Role matrix: an investigation."},
    ),
    ConsoleRoute(
        "POST", "/console/data-access/grants/{delayable}/delay/lift", Permission.ACCESS_APPROVE
    ),
    ConsoleRoute(
        "POST",
        "/console/data-access/policy",
        Permission.ACCESS_APPROVE,
        lambda t: {
            "max_duration_hours": "168",
            "emergency_allowed": "1",
            "emergency_max_hours": "24",
            "notify_member_per_access": "1",
            "max_disclosure_delay_days": "30",
        },
    ),
    # Privacy requests: the queue's settings, then one open erasure request worked from
    # assignment to the answer (which closes it, so it comes last).
    ConsoleRoute(
        "POST",
        "/console/privacy-requests/settings",
        Permission.PRIVACY_REQUESTS_WRITE,
        lambda t: {"reminder_days": "5", "export_link_days": "7", "export_collect_hours": "24"},
    ),
    # Access reviews: a campaign made, one read and exported, and an item kept by its reviewer.
    ConsoleRoute("GET", "/console/access-reviews/new", Permission.REVIEWS_WRITE),
    ConsoleRoute(
        "POST",
        "/console/access-reviews",
        Permission.REVIEWS_WRITE,
        lambda t: {
            "name": f"Matrix review {uuid.uuid4().hex[:6]}",
            "scope_product_clients": "1",
            "reviewer_rule": "manager",
            "starts_on": t.extra["today"],
            "due_on": t.extra["review_due"],
            "default_on_due": "keep",
        },
    ),
    ConsoleRoute("GET", "/console/access-reviews/{review}", Permission.REVIEWS_READ),
    ConsoleRoute("GET", "/console/access-reviews/{review}/export.csv", Permission.REVIEWS_READ),
    ConsoleRoute(
        "POST",
        "/console/access-review-items/{reviewitem}/decision",
        Permission.REVIEWS_DECIDE,
        lambda t: {"decision": "approve", "reason": "role matrix"},
    ),
    ConsoleRoute("GET", "/console/privacy-requests/{privacy}", Permission.PRIVACY_REQUESTS_READ),
    ConsoleRoute(
        "POST",
        "/console/privacy-requests/{privacy}/assign",
        Permission.PRIVACY_REQUESTS_WRITE,
        lambda t: {"assignee_id": t.extra["privacy_officer"]},
    ),
    ConsoleRoute(
        "POST",
        "/console/privacy-requests/{privacy}/notes",
        Permission.PRIVACY_REQUESTS_WRITE,
        lambda t: {"text": "role matrix"},
    ),
    ConsoleRoute(
        "POST",
        "/console/privacy-requests/{privacy}/extend",
        Permission.PRIVACY_REQUESTS_WRITE,
        lambda t: {"months": "1", "reason": "role matrix"},
    ),
    ConsoleRoute(
        "POST", "/console/privacy-requests/{privacy}/export", Permission.PRIVACY_REQUESTS_WRITE
    ),
    ConsoleRoute(
        "POST",
        "/console/privacy-requests/{privacy}/erasure",
        Permission.PRIVACY_REQUESTS_WRITE,
        lambda t: {"kind_personal": "on", "confirm": "on"},
    ),
    ConsoleRoute(
        "POST",
        "/console/privacy-requests/{privacy}/close",
        Permission.PRIVACY_REQUESTS_WRITE,
        lambda t: {"outcome": "answer", "answer": "role matrix"},
    ),
]

ALLOWED, REFUSED, TO_ACCOUNT = "allowed", "refused (403)", "sent to /account"


def expected_outcome(role: Role, route: ConsoleRoute) -> str:
    if route.permission is None or route.permission in ROLE_PERMISSIONS[role]:
        return ALLOWED
    # The console's front door sends people without console access to their account page.
    return TO_ACCOUNT if route.key == "GET /console" else REFUSED


async def outcome_of(browser: WebClient, response: httpx.Response) -> str:
    if response.status_code == 403:
        return REFUSED
    if response.status_code == 200:
        return ALLOWED
    if response.status_code == 303:
        location = response.headers["location"]
        if location == "/account" and response.request.url.path == "/console":
            return TO_ACCOUNT
        if location.startswith("/login"):
            return f"signed out ({location})"
        # An action that was allowed but did not do its work would flash "Not done: …".
        landing = text_of((await browser.get(location)).text)
        return f"allowed but failed: {landing[:300]}" if "Not done:" in landing else ALLOWED
    return f"unexpected HTTP {response.status_code}"


async def make_targets(org: OrgHandle, dns: Zone | None = None) -> Targets:
    units = {
        name: (await make_unit(org, name))["id"] for name in ("Rename", "Move", "Under", "Delete")
    }
    member = await make_member(org, name="Target Member")
    targets = Targets(
        str(org.root_unit_id),
        member["id"],
        units["Rename"],
        units["Move"],
        units["Under"],
        units["Delete"],
    )
    targets.extra.update(await webhook_targets(org))
    targets.extra.update(await departure_targets(org))
    targets.extra.update(await privacy_targets(org))
    targets.extra.update(await access_targets(org))
    targets.extra.update(await scim_targets(org))
    targets.extra.update(await api_token_targets(org))
    targets.extra.update(await directory_targets(org))
    targets.extra.update(await domain_targets(org, dns))
    targets.extra.update(await review_targets(org))
    return targets


async def review_targets(org: OrgHandle) -> dict[str, str]:
    """An open campaign over a product client, naming as reviewers everyone who may decide
    (so the person trying the routes reviews its item)."""
    from datetime import UTC, datetime, timedelta

    from tenants import db

    product = await make_product(org)
    client = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "reviewed", "scopes": ["members:read"]}
    )
    assert client.status_code == 201, client.text
    deciders = [r.value for r in Role if Permission.REVIEWS_DECIDE in ROLE_PERMISSIONS[r]]
    async with db.tenant_transaction(org.id):
        rows = await db.fetch(
            "SELECT id FROM members WHERE status = 'active' AND roles ?| $1::text[]", deciders
        )
    today = datetime.now(UTC).date()
    due = (today + timedelta(days=7)).isoformat()
    made = await org.post(
        "/v1/access-reviews",
        {
            "name": "Matrix campaign",
            "scopes": ["product_clients"],
            "reviewer_rule": "named",
            "named_reviewer_ids": [str(r["id"]) for r in rows] or [],
            "starts_on": today.isoformat(),
            "due_on": due,
            "default_on_due": "keep",
        },
    )
    assert made.status_code == 201, made.text
    items = (await org.get(f"/v1/access-reviews/{made.json()['id']}/items")).json()["items"]
    mine = next(i for i in items if i["client_id"] == client.json()["id"])
    return {"review": made.json()["id"], "reviewitem": mine["id"], "review_due": due}


async def directory_targets(org: OrgHandle) -> dict[str, str]:
    """A member to edit, a product and two groups (one to delete)."""
    editable = await make_member(org, name="Editable Member")
    product = await make_product(org)
    groups = {}
    for name in ("group", "doomed"):
        made = await org.post("/v1/groups", {"name": f"{name} {uuid.uuid4().hex[:6]}"})
        assert made.status_code == 201, made.text
        groups[name] = made.json()["id"]
    # An item of theirs under legal hold (the hold form edits its member-facing text).
    item = await org.post(
        "/v1/content",
        {
            "product_id": product["id"],
            "external_id": f"held-{uuid.uuid4().hex[:6]}",
            "member_id": editable["id"],
            "title": "Held file",
            "kind": "personal",
        },
    )
    assert item.status_code in (200, 201), item.text
    return {
        "editable": editable["id"],
        "editable_email": editable["email"],
        "product": product["id"],
        "held": item.json()["id"],
        **groups,
    }


async def domain_targets(org: OrgHandle, dns: Zone | None) -> dict[str, str]:
    """A domain whose record is published (when a DNS zone is given), and one to remove."""
    names = {"domain_to_verify": "verify.matrix.example", "domain_to_remove": "gone.matrix.example"}
    for name in names.values():
        added = await org.post("/v1/domains", {"name": name})
        assert added.status_code == 201, added.text
        if dns is not None and name.startswith("verify"):
            dns.publish(name, added.json()["record"]["value"])
    return names


async def scim_targets(org: OrgHandle) -> dict[str, str]:
    """A SCIM token to rotate and revoke."""
    from tenants import db
    from tenants.actors import system_actor
    from tenants.scim import service as scim

    async with db.tenant_transaction(org.id):
        token, _ = await scim.create_token("matrix", actor=system_actor("tests"))
    return {"scim_token": str(token.id)}


async def api_token_targets(org: OrgHandle) -> dict[str, str]:
    """An API token to revoke."""
    from tenants import db
    from tenants.actors import system_actor
    from tenants.tokens import service as tokens

    async with db.tenant_transaction(org.id):
        token, _ = await tokens.create_token(
            "matrix", ["members:read"], expires_in=None, actor=system_actor("tests")
        )
    return {"apitoken": str(token.id)}


async def departure_targets(org: OrgHandle) -> dict[str, str]:
    """A running departure whose suspension step is dead, a member to start one for, and
    another dead job (for the background jobs page)."""
    from datetime import UTC, datetime

    from tenants import db
    from tenants.jobs import service as jobs

    today = datetime.now(UTC).date().isoformat()
    leaver = await make_member(org, name="Leaving Member")
    starter = await make_member(org, name="Starting Member")
    started = await org.post("/v1/departures", {"member_id": leaver["id"], "last_day": today})
    assert started.status_code == 201, started.text
    departure = started.json()["id"]
    dead = {"step": f"departure:{departure}:suspend", "other": f"matrix:{uuid.uuid4().hex}"}
    async with db.tenant_transaction(org.id):
        await jobs.enqueue("matrix.never_run", {}, key=dead["other"])
        ids = {}
        for name, key in dead.items():
            await db.connection().execute_query(
                "UPDATE jobs SET status = 'dead' WHERE key = $1", [key]
            )
            row = await db.fetch_one("SELECT id FROM jobs WHERE key = $1", key)
            assert row is not None, key
            ids[name] = str(row["id"])
    return {
        "departure": departure,
        "departure_job": ids["step"],
        "job": ids["other"],
        "starter": starter["id"],
        "today": today,
    }


async def access_targets(org: OrgHandle) -> dict[str, str]:
    """Requests for a member's data by an admin of their own (so every role but that admin
    may decide on them): to approve, deny, withdraw and delay, and an emergency access."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from tenants import db
    from tenants.access import service as access
    from tenants.access.models import DataCategory
    from tenants.actors import Actor, ActorKind
    from tenants.permissions import permissions_of

    policy = {"emergency_allowed": True, "max_disclosure_delay_days": 30}
    assert (await org.patch("/v1/access/policy", policy)).status_code == 200
    asker = await make_member(org, name="Access Requester", roles=["admin"])
    accessed = await make_member(org, name="Accessed Member")
    request = access.NewGrant(
        member_id=uuid.UUID(accessed["id"]),
        unit_id=None,
        categories=[DataCategory.FILES],
        product_ids=None,
        justification="Role matrix: a justified request.",
        duration_hours=8,
    )
    actor = Actor(ActorKind.MEMBER, asker["id"], "Access Requester")
    grants = {}
    async with db.tenant_transaction(org.id):
        for name in ("approvable", "deniable", "revocable", "delayable", "emergency"):
            made = await access.request_access(
                replace(request, emergency=name == "emergency"),
                permissions=permissions_of(["admin"]),
                actor=actor,
            )
            grants[name] = str(made.id)
    until = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    return {**grants, "accessed_email": accessed["email"], "delay_until": until}


async def privacy_targets(org: OrgHandle) -> dict[str, str]:
    """An open erasure request and a privacy officer to assign it to."""
    officer = await make_member(org, name="Privacy Officer", roles=["privacy_officer"])
    asker = await make_member(org, name="Asking Member")
    sent = await org.post(
        "/v1/privacy-requests",
        {"member_id": asker["id"], "kind": "erasure", "message": "Erase my data."},
    )
    assert sent.status_code == 201, sent.text
    return {"privacy": sent.json()["id"], "privacy_officer": officer["id"]}


async def webhook_targets(org: OrgHandle) -> dict[str, str]:
    """A product with a webhook address and a dead delivery to it (for the retry button)."""
    from tenants import db
    from tenants.webhooks import service as webhooks

    product = await make_product(org)
    hooked = await org.put(
        f"/v1/products/{product['id']}/webhook", json={"url": "https://hooks.example.com/in"}
    )
    assert hooked.status_code == 200, hooked.text
    async with db.tenant_transaction(org.id):
        key = f"matrix:{uuid.uuid4().hex}"
        await webhooks.publish(
            "policy.changed", {}, key=key, product_ids=[uuid.UUID(product["id"])]
        )
        delivery = await db.fetch_one(
            "SELECT id FROM webhook_deliveries WHERE idempotency_key = $1", key
        )
        assert delivery is not None
        await db.connection().execute_query(
            "UPDATE webhook_deliveries SET status = 'dead' WHERE id = $1", [delivery["id"]]
        )
        await db.connection().execute_query(
            "UPDATE jobs SET status = 'dead' WHERE key = $1", [webhooks.job_key(delivery["id"])]
        )
    return {"product": product["id"], "delivery": str(delivery["id"])}


async def person_with_role(org: OrgHandle, role: Role) -> dict[str, Any]:
    person = await make_member(org, name=f"{role.value.title()} Person", roles=[role.value])
    await set_password(org.id, person["id"], PASSWORD)
    return person


@pytest.fixture
async def matrix_org(org: OrgHandle, settings: Settings) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    await configure_sso(
        settings,
        org.id,
        issuer=UNREACHABLE_ISSUER,
        client_id="before-matrix",
        client_secret="before-matrix-secret-0123",
    )
    return org


async def sign_in(
    browser: WebClient, org: OrgHandle, person: dict[str, Any], next_path: str = ""
) -> str:
    response = await browser.password_sign_in(
        org.slug, person["email"], PASSWORD, next_path=next_path
    )
    assert response.status_code == 303, response.text
    assert browser.session_cookie, response.headers
    location: str = response.headers["location"]
    return location


async def try_route(
    browser: WebClient, route: ConsoleRoute, targets: Targets, csrf: str
) -> httpx.Response:
    if route.method == "GET":
        return await browser.get(route.url(targets))
    return await browser.post(route.url(targets), {**route.form(targets), "csrf": csrf})


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_every_console_route_answers_as_the_role_table_says(
    app: Any, matrix_org: OrgHandle, role: Role, dns: Zone
) -> None:
    person = await person_with_role(matrix_org, role)
    targets = await make_targets(matrix_org, dns)
    async with asgi_client(app) as browser:
        landing = await sign_in(browser, matrix_org, person)
        assert landing == (
            "/console" if Permission.CONSOLE_ACCESS in ROLE_PERMISSIONS[role] else "/account"
        )
        csrf = await browser.csrf_of("/account")
        outcomes: dict[str, str] = {}
        for route in ROUTES:
            response = await try_route(browser, route, targets, csrf)
            outcomes[route.key] = await outcome_of(browser, response)
    assert outcomes == {route.key: expected_outcome(role, route) for route in ROUTES}


def test_the_matrix_covers_every_console_route_of_the_app(app: Any) -> None:
    served = {
        f"{method} {route.path}"
        for route in app.routes
        if getattr(route, "path", "").startswith("/console") and route.path != "/console/switch"
        for method in (route.methods or set()) - {"HEAD"}
    }
    covered = {
        f"{r.method} {re.sub(r'[{][a-z]+[}]', '{id}', r.path.split('?')[0])}" for r in ROUTES
    }
    assert served - covered == set(), "console routes missing from the role matrix"


# --- the policy in plain words ------------------------------------------------------------


#: Routes a reading role may post: they check something and record that they did.
CHECKS_THAT_RECORD = frozenset({"POST /console/audit/verify"})


async def test_auditors_read_every_console_page_and_change_nothing(
    app: Any,
    matrix_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    auditor = await person_with_role(matrix_org, Role.AUDITOR)
    targets = await make_targets(matrix_org)
    async with asgi_client(app) as browser:
        await sign_in(browser, matrix_org, auditor)
        csrf = await browser.csrf_of("/console")
        readable = ROLE_PERMISSIONS[Role.AUDITOR]
        # Every page, but the forms that only make something (add a member, import).
        for route in [
            r
            for r in ROUTES
            if r.method == "GET" and (r.permission is None or r.permission in readable)
        ]:
            assert (await try_route(browser, route, targets, csrf)).status_code == 200, route.key
        before = await row_counts(owner_conn)
        sso_before = await owner_conn.fetchrow("SELECT issuer, client_id FROM sso_connections")
        for route in [r for r in ROUTES if r.method == "POST" and r.key not in CHECKS_THAT_RECORD]:
            response = await try_route(browser, route, targets, csrf)
            assert response.status_code == 403, route.key
            said = text_of(response.text)
            # Who could: the roles that give the page's permission, and the auditor's own.
            holders = [r for r in Role if route.permission in ROLE_PERMISSIONS[r]]
            assert f"This page is for the role{'s' if len(holders) > 1 else ''}" in said, said
            assert all(ROLE_NAMES[r] in said for r in holders) and "yours: Auditor" in said
        assert await row_counts(owner_conn) == before  # not even an audit event
        # Verifying the audit chain is reading it: an auditor may, and what it writes is
        # its job (the finding is recorded when the job runs), nothing of anyone's data.
        for route in [r for r in ROUTES if r.key in CHECKS_THAT_RECORD]:
            assert (await try_route(browser, route, targets, csrf)).status_code == 303
        after = await row_counts(owner_conn)
        assert {t: n - before[t] for t, n in after.items() if n != before[t]} == {"jobs": 1}
    assert await owner_conn.fetchrow("SELECT issuer, client_id FROM sso_connections") == sso_before
    status = await owner_conn.fetchval(
        "SELECT status FROM members WHERE id = $1", uuid.UUID(targets.member)
    )
    assert status == "active"


async def test_helpdesk_handles_accounts_but_not_policies_or_sso_settings(
    app: Any,
    matrix_org: OrgHandle,
    owner_conn: asyncpg.Connection,
) -> None:
    helpdesk = ROLE_PERMISSIONS[Role.HELPDESK]
    assert Permission.POLICIES_WRITE not in helpdesk
    assert Permission.SSO_WRITE not in helpdesk
    assert Permission.SSO_READ not in helpdesk

    person = await person_with_role(matrix_org, Role.HELPDESK)
    targets = await make_targets(matrix_org)
    async with asgi_client(app) as browser:
        await sign_in(browser, matrix_org, person)
        csrf = await browser.csrf_of("/console")
        refused = await browser.get("/console/settings")
        assert refused.status_code == 403
        # An admin of another kind is sent back to the console, not to their account.
        assert 'href="/console">Back to the console</a>' in refused.text
        saved = await browser.post(
            "/console/settings/sso",
            {"csrf": csrf, "issuer": "https://evil.example", "client_id": "evil", "enabled": "on"},
        )
        assert saved.status_code == 403
        tested = await browser.post("/console/settings/sso/test", {"csrf": csrf})
        assert tested.status_code == 403
        assert (await browser.get("/console/policies")).status_code == 200  # may read them
        for path in (
            "/console/policies/rules",
            "/console/policies/rules/remove",
            "/console/policies/rollback",
        ):
            written = await browser.post(path, {"csrf": csrf, **targets.rule, "version": "0"})
            assert written.status_code == 403, path
        suspended = await browser.post(
            f"/console/members/{targets.member}/transition",
            {"csrf": csrf, "action": "suspend", "confirmed": "1"},
        )
        assert suspended.status_code == 303
    assert await owner_conn.fetchval("SELECT issuer FROM sso_connections") == UNREACHABLE_ISSUER
    assert await owner_conn.fetchval("SELECT count(*) FROM policy_rules") == 0
    assert (
        await owner_conn.fetchval(
            "SELECT status FROM members WHERE id = $1", uuid.UUID(targets.member)
        )
        == "suspended"
    )


def test_only_privacy_officers_hold_access_approve() -> None:
    holders = {role for role in Role if Permission.ACCESS_APPROVE in ROLE_PERMISSIONS[role]}
    assert holders == {Role.PRIVACY_OFFICER}
    assert Permission.ACCESS_APPROVE not in ROLE_PERMISSIONS[Role.ADMIN]


async def test_members_are_sent_to_their_account_from_the_console(
    app: Any, matrix_org: OrgHandle
) -> None:
    person = await person_with_role(matrix_org, Role.MEMBER)
    async with asgi_client(app) as browser:
        assert (
            await sign_in(browser, matrix_org, person, next_path="/console/members") == "/account"
        )
        front_door = await browser.get("/console")
        assert front_door.status_code == 303
        assert front_door.headers["location"] == "/account"
        inner = await browser.get("/console/members")
        assert inner.status_code == 403
        assert 'href="/account"' in inner.text
        root = await browser.get("/")
        assert root.status_code == 303
        assert (await browser.get(root.headers["location"])).headers.get("location") == "/account"
