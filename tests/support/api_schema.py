"""The served OpenAPI document as test data: its operations, and request bodies built from it.

Tests that must hold for every route (isolation, validation, scopes) walk the document the
app serves instead of a hand-kept list of routes, so a route is covered the day it is
declared. What the document cannot say (which existing row a path id should name, which
body makes a write actually change something) lives in the small tables of ``World``; a new
resource prefix fails loudly here until it is added to them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import OrgHandle, make_group, make_member, make_product, make_unit

JSON = dict[str, Any]

PATH_PARAM = re.compile(r"{(\w+)}")
PROBLEM_JSON = "application/problem+json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"


@dataclass(frozen=True)
class Operation:
    """One method on one path of the document."""

    method: str
    path: str
    spec: JSON
    document: JSON

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return PATH_PARAM.findall(self.path)

    @property
    def prefix(self) -> str:
        """The collection the path's ``{id}`` belongs to: ``/v1/groups`` for ``/v1/groups/{id}/members``."""
        return self.path.split("/{", 1)[0]

    @property
    def query_params(self) -> list[JSON]:
        return [
            {**p, "schema": resolve(self.document, p.get("schema", {}))}
            for p in self.spec.get("parameters", [])
            if p["in"] == "query"
        ]

    @property
    def body_schema(self) -> JSON | None:
        """The JSON body's schema; None without a body or for a stream of records."""
        body = self.spec.get("requestBody")
        if body is None or "application/json" not in body["content"]:
            return None
        return resolve(self.document, body["content"]["application/json"]["schema"])

    @property
    def record_schema(self) -> JSON | None:
        """The schema of each line of an NDJSON or CSV body (bulk uploads, imports); None
        for others."""
        media = self.stream_media
        if media is None:
            return None
        content = self.spec["requestBody"]["content"][media]
        # A CSV body is declared as text, its row's schema beside it.
        return resolve(
            self.document, content["x-row-schema"] if media == CSV else content["schema"]
        )

    @property
    def stream_media(self) -> str | None:
        """NDJSON or CSV when the body is a stream of records; None otherwise."""
        body = self.spec.get("requestBody")
        for media in (NDJSON, CSV):
            if body is not None and media in body["content"]:
                return media
        return None

    @property
    def permission(self) -> str | None:
        value = self.spec.get("x-permission")
        return str(value) if value is not None else None

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and not self.path_params

    def __str__(self) -> str:
        return self.key


def resolve(document: JSON, schema: JSON) -> JSON:
    """``schema`` with a top-level local ``$ref`` followed (repeatedly); other keys kept."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**document["components"]["schemas"][name], **rest}
    return schema


def is_any(document: JSON, schema: JSON) -> bool:
    """Whether ``schema`` accepts any JSON value (a property typed ``Any``)."""
    schema = resolve(document, schema)
    return not any(k in schema for k in ("type", "enum", "const", "anyOf", "oneOf", "allOf"))


def allows_null(document: JSON, schema: JSON) -> bool:
    schema = resolve(document, schema)
    if schema.get("type") == "null" or is_any(document, schema):
        return True
    return any(allows_null(document, option) for option in schema.get("anyOf", []))


def non_null(document: JSON, schema: JSON) -> JSON:
    """The schema a non-null value must match (the non-null branch of ``X | None``)."""
    schema = resolve(document, schema)
    options = [o for o in schema.get("anyOf", []) if resolve(document, o).get("type") != "null"]
    if len(options) == 1:
        return non_null(document, options[0])
    return schema


def operations(document: JSON) -> list[Operation]:
    """Every operation of the document, in document order."""
    found = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            found.append(Operation(method.upper(), path, spec, document))
    return found


async def served_document(client: httpx.AsyncClient) -> JSON:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: JSON = response.json()
    assert document["paths"], "the served document lists no paths"
    return document


def sample(document: JSON, name: str, schema: JSON, ids: Mapping[str, str], slug: str) -> Any:
    """A valid value for the property ``name``; uuid properties take ``ids[name]``."""
    schema = non_null(document, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("anyOf"):  # a union: a value of its first kind
        return sample(document, name, schema["anyOf"][0], ids, slug)
    kind = schema.get("type")
    fmt = schema.get("format")
    if kind == "string":
        if fmt == "uuid":
            if name not in ids:
                raise AssertionError(
                    f"no test id for the uuid property {name!r}; add it to World.body_ids"
                )
            return ids[name]
        if fmt == "email":
            return f"probe-{uuid.uuid4().hex[:8]}@{slug}.example"
        if fmt == "date-time":
            return "2030-01-01T00:00:00Z"
        if fmt == "uri":
            return f"https://idp-{uuid.uuid4().hex[:8]}.{slug}.example"
        text = f"probe-{uuid.uuid4().hex[:10]}"
        low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", len(text)))
        return (text * 10)[: max(low, min(len(text), high))]
    if kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        return max(low, min(0, high))
    if kind == "boolean":
        return True
    if kind == "array":
        item = name.removesuffix("s")  # member_ids -> member_id
        return [
            sample(document, item, schema["items"], ids, slug)
            for _ in range(schema.get("minItems", 0))
        ]
    if kind == "object":
        return valid_object(document, schema, ids, slug)
    if kind is None and not schema.get("anyOf"):
        return True  # any JSON value: the per-operation tables give meaningful ones
    raise AssertionError(f"cannot make a value for {name!r} from {schema}")


def valid_object(document: JSON, schema: JSON, ids: Mapping[str, str], slug: str) -> JSON:
    """An object with exactly the required properties, each valid."""
    schema = resolve(document, schema)
    properties = schema.get("properties", {})
    return {
        name: sample(document, name, properties[name], ids, slug)
        for name in schema.get("required", [])
    }


#: The collection a path's ``{id}`` belongs to → the World attribute holding that resource.
RESOURCE_BY_PREFIX = {
    "/v1/units": "unit",
    "/v1/members": "member",
    "/v1/groups": "group",
    "/v1/products": "spare_product",
    "/v1/product-accounts": "account",
    "/v1/policy/rules": "rule",
    "/v1/departures": "departure",
    "/v1/jobs": "dead_job",
    "/v1/content": "content_item",
    "/v1/webhook-deliveries": "dead_delivery",
    "/v1/access/grants": "access_grant",
    "/v1/privacy-requests": "privacy_request",
    "/v1/access-reviews": "access_review",
}

#: Operations whose ``{id}`` must name a resource in a particular state (before
#: RESOURCE_BY_PREFIX): only emergency access is reviewed.
#: Operations only a privacy officer's credentials may make (``PERSONAL_SCOPES``).
DECIDED_BY_AN_OFFICER = frozenset(
    {
        "POST /v1/access/grants/{id}/approve",
        "POST /v1/access/grants/{id}/deny",
        "POST /v1/access/grants/{id}/review",
        "PUT /v1/access/grants/{id}/disclosure-delay",
        "DELETE /v1/access/grants/{id}/disclosure-delay",
    }
)
RESOURCE_BY_OPERATION = {"POST /v1/access/grants/{id}/review": "emergency_grant"}

#: Other path parameters → the World attribute they name.
RESOURCE_BY_PARAM = {
    "member_id": "member",
    "client_id": "client",
    "domain": "domain",
    "item_id": "access_review_item",
}

#: A setting members may choose and the organisation may set (from the built-in catalogue).
SETTING = "sharing.obtain_from_third_parties"

Table = dict[str, Callable[["World"], JSON]]

#: Bodies (merged over the required properties) that make each write change something, so a
#: request refused for isolation or permission is one that would otherwise have succeeded.
CHANGES: Table = {
    "PUT /v1/identity-backend": lambda w: {
        "kind": "local",
        "server_url": f"https://kc2.{w.org.slug}.example",
    },
    "PUT /v1/signal-transmitter": lambda w: {
        "issuer": f"https://ssf2.{w.org.slug}.example",
        "jwks_uri": f"https://ssf2.{w.org.slug}.example/jwks",
        "audience": "tenantry",
    },
    "POST /v1/claims/token-issuance": lambda w: {
        "type": "microsoft.graph.authenticationEvent.tokenIssuanceStart",
        "data": {
            "@odata.type": "microsoft.graph.onTokenIssuanceStartCalloutData",
            "authenticationContext": {"user": {"mail": w.member["email"]}},
        },
    },
    "PUT /v1/claims/entra-provider": lambda w: {
        "entra_tenant_id": str(uuid.uuid4()),
        "app_id": str(uuid.uuid4()),
        "app_id_uri": f"api://entra2.{w.org.slug}.example",
    },
    "PATCH /v1/organisation": lambda w: {"name": f"Renamed Organisation {fresh()}"},
    "PATCH /v1/units/{id}": lambda w: {"name": f"renamed-unit-{fresh()}"},
    "PATCH /v1/members/{id}": lambda w: {"name": f"Renamed Member {fresh()}"},
    "POST /v1/members/{id}/transitions": lambda w: {"action": "suspend", "reason": "probe"},
    "POST /v1/members/import": lambda w: {
        "email": f"imported-{fresh()}@{w.org.slug}.example",
        "name": "Imported Probe",
        "unit": None,
        "manager_email": None,
        "roles": None,
        "status": None,
    },
    "PATCH /v1/groups/{id}": lambda w: {"name": f"renamed-group-{fresh()}", "priority": 7},
    "PATCH /v1/products/{id}": lambda w: {"name": f"Renamed Product {fresh()}"},
    "PATCH /v1/product-accounts/{id}": lambda w: {"status": "suspended"},
    "POST /v1/products/{id}/clients": lambda w: {"scopes": ["members:read"]},
    "POST /v1/members/{id}/choices": lambda w: {"setting": SETTING, "value": True},
    "PUT /v1/policy/rules": lambda w: {"target_kind": "unit", "setting": SETTING, "value": False},
    "POST /v1/policy/preview": lambda w: {
        "target_kind": "unit",
        "setting": SETTING,
        "value": False,
    },
    "PUT /v1/settings/declared": lambda w: {"settings": [declaration(w.product)]},
    "POST /v1/departures": lambda w: {
        "member_id": w.resource("stayer")["id"],
        "last_day": datetime.now(UTC).date().isoformat(),
    },
    "POST /v1/members/{id}/departure-preview": lambda w: {
        "last_day": datetime.now(UTC).date().isoformat()
    },
    "PUT /v1/departure-policy": lambda w: {"retention_days": 45},
    "POST /v1/content": lambda w: {"product_id": w.product["id"], "size": 7},
    "POST /v1/content/bulk": lambda w: {"product_id": w.product["id"], "size": 7},
    # Placing a hold needs what the member is told and a review date (both optional in the
    # schema, since lifting a hold takes neither).
    "PUT /v1/content/{id}/legal-hold": lambda w: {
        "legal_hold": True,
        "reason": "probe",
        "member_text": "Kept while a claim is open.",
        "review_on": (datetime.now(UTC).date() + timedelta(days=365)).isoformat(),
    },
    "PUT /v1/products/{id}/webhook": lambda w: {"url": f"https://hooks.{w.org.slug}.example/in"},
    "POST /v1/privacy-requests/{id}/assign": lambda w: {
        "assignee_id": w.resource("privacy_officer")["id"]
    },
    "PUT /v1/privacy-requests/{id}/export/parts": lambda w: {
        "product_id": w.product["id"],
        "data": {"probe": True},
    },
    "PUT /v1/privacy-request-policy": lambda w: {"reminder_days": 3},
    "PUT /v1/retention-policy": lambda w: {"mail_days": 30},
    "PUT /v1/mail-templates": lambda w: {"subject": f"News from {{{{ organisation }}}} {fresh()}"},
    "PATCH /v1/access/policy": lambda w: {"max_duration_hours": 200},
    "POST /v1/access/grants": lambda w: {
        "admin_id": w.resource("access_admin")["id"],
        "member_id": w.member["id"],
        "justification": "Probing the API with a justified request.",
    },
    "POST /v1/access/check": lambda w: {"admin_id": w.resource("access_admin")["id"]},
    "POST /v1/access-reviews": lambda w: {
        "name": f"Probe review {fresh()}",
        "scopes": ["admin_roles", "product_clients"],
        "reviewer_rule": "named",
        "named_reviewer_ids": [w.member["id"]],
        "starts_on": datetime.now(UTC).date().isoformat(),
        "due_on": (datetime.now(UTC).date() + timedelta(days=7)).isoformat(),
        "default_on_due": "keep",
    },
    "POST /v1/access-reviews/{id}/items/{item_id}/decision": lambda w: {
        "decision": "approve",
        "reason": "Probing: still needed.",
    },
    "PUT /v1/access/grants/{id}/disclosure-delay": lambda w: {
        "until": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "reason": "Probing: an investigation is under way.",
    },
}

#: Query parameters an operation needs to answer 200 (the document marks few as required).
QUERIES: Table = {
    "GET /v1/claims": lambda w: {"email": w.member["email"]},
    "GET /v1/effective-settings": lambda w: {"email": w.member["email"]},
    "GET /v1/policy/diff": lambda w: {"from": 0, "to": 1},
}


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def fresh() -> str:
    return uuid.uuid4().hex[:8]


def declaration(product: JSON) -> JSON:
    """A product's own setting, declared through PUT /v1/settings/declared."""
    return {
        "key": f"{product['key']}.probe-{fresh()}",
        "type": "bool",
        "default": True,
        "title": "Probe setting",
        "samples": {"true": {"document": {"probe": True}, "description": "What a probe sends."}},
    }


@dataclass(frozen=True)
class World:
    """One of each resource in one organisation, shaped so that every write on it succeeds
    for its owner: ``unit`` is an empty leaf (renamable, movable, deletable), ``member``
    sits in the root unit, belongs to ``group`` and has ``account`` in ``product``;
    ``spare_product`` has no accounts so it can be deleted, and ``client`` (a product's API
    client) belongs to it; ``sso`` is the organisation's identity provider connection;
    ``rule`` a policy rule on ``other_unit``. ``product`` declares a setting of its own and
    ``member`` has made a choice, so the settings and policy reads have something to show."""

    org: OrgHandle
    unit: JSON
    other_unit: JSON
    member: JSON
    group: JSON
    product: JSON
    spare_product: JSON
    account: JSON
    client: JSON
    sso: JSON
    rule: JSON
    #: Resources of later features, by name (see WORLD_EXTENSIONS).
    extra: dict[str, JSON] = field(default_factory=dict)

    def resource(self, attribute: str) -> JSON:
        if attribute in self.extra:
            return self.extra[attribute]
        value: JSON = getattr(self, attribute)
        return value

    def path_ids(self, operation: Operation) -> dict[str, str]:
        ids = {}
        for name in operation.path_params:
            if name == "id":
                if operation.prefix not in RESOURCE_BY_PREFIX:
                    raise AssertionError(
                        f"{operation}: no test resource for {operation.prefix}/{{id}}; "
                        "add it to World and RESOURCE_BY_PREFIX in tests/support/api_schema.py"
                    )
                attribute = RESOURCE_BY_OPERATION.get(operation.key)
                ids[name] = self.resource(attribute or RESOURCE_BY_PREFIX[operation.prefix])["id"]
            else:
                if name not in RESOURCE_BY_PARAM:
                    raise AssertionError(
                        f"{operation}: no test resource for {{{name}}}; add it to RESOURCE_BY_PARAM"
                    )
                ids[name] = self.resource(RESOURCE_BY_PARAM[name])["id"]
        return ids

    def url(self, operation: Operation, ids: Mapping[str, str] | None = None) -> str:
        ids = self.path_ids(operation) if ids is None else ids
        return PATH_PARAM.sub(lambda m: str(ids[m.group(1)]), operation.path)

    @property
    def body_ids(self) -> dict[str, str]:
        """Ids for uuid body properties, chosen so that the write is legal."""
        return {
            "parent_id": self.other_unit["id"],
            "unit_id": self.other_unit["id"],
            "member_id": self.member["id"],
            "product_id": self.product["id"],
            "manager_id": self.member["id"],
            "target_id": self.other_unit["id"],
        }

    def body(self, operation: Operation) -> Any:
        """A body that is valid for ``operation`` and changes something; None without a body.
        For an NDJSON operation: a list of one record (``send`` writes it as NDJSON)."""
        schema = operation.body_schema or operation.record_schema
        if schema is None:
            return None
        body = valid_object(operation.document, schema, self.body_ids, self.org.slug)
        body.update(CHANGES.get(operation.key, lambda w: {})(self))
        return body if operation.body_schema else [body]

    def headers(self, operation: Operation) -> dict[str, str]:
        """The credentials of the organisation's own request for ``operation``: for the
        decisions on access to data, a token a privacy officer made (only a person holding
        that role decides); the organisation's token otherwise."""
        if operation.key in DECIDED_BY_AN_OFFICER:
            return {"Authorization": f"Bearer {self.extra['access_decider']['token']}"}
        return self.org.headers

    def params(self, operation: Operation) -> JSON:
        """Query parameters with which ``operation`` answers 200 (list routes: one big page)."""
        params = QUERIES.get(operation.key, lambda w: {})(self)
        if any(p["name"] == "limit" for p in operation.query_params):
            params["limit"] = 500
        return params

    @property
    def markers(self) -> set[str]:
        """Strings found only in this organisation's data: its ids, its email/IdP domain and
        its product keys (which name the settings it declared)."""
        keys = {self.product["key"], self.spare_product["key"]}
        return self.ids | keys | {f"{self.org.slug}.example"}

    @property
    def ids(self) -> set[str]:
        """Every id of this organisation's rows that the API can show."""
        found = {str(self.org.id), str(self.org.root_unit_id)}
        for attribute in (
            "unit",
            "other_unit",
            "member",
            "group",
            "product",
            "spare_product",
            "account",
            "client",
            "rule",
        ):
            found.add(self.resource(attribute)["id"])
        # Names standing in for ids in paths (a domain) are not ids; the organisation's
        # domain in them makes them markers anyway.
        found |= {
            str(value["id"])
            for value in self.extra.values()
            if "id" in value and _is_uuid(value["id"])
        }
        return found


#: Builders of resources for later features' routes: each adds entries to ``extra`` (name →
#: resource with an ``id``), for RESOURCE_BY_PREFIX / RESOURCE_BY_PARAM / CHANGES to name.
WorldExtension = Callable[[OrgHandle, "World"], Awaitable[dict[str, JSON]]]
WORLD_EXTENSIONS: list[WorldExtension] = []


def world_extension(fn: WorldExtension) -> WorldExtension:
    WORLD_EXTENSIONS.append(fn)
    return fn


@world_extension
async def domains_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """A domain of the organisation whose TXT record is published on the test session's
    DNS server, so verifying it succeeds; its "id" is its name (the path parameter). And two
    refused password sign-ins in the sign-in log, by an address at the organisation."""
    from tenants.signins import service as sign_ins
    from tenants.signins.rules import Reason, SignInMethod
    from tests.support import dns_server

    for _ in range(2):  # two, so the list issues a cursor
        await sign_ins.record_for(
            org.id,
            sign_ins.SignInAttempt(
                SignInMethod.PASSWORD,
                reason=Reason.BAD_CREDENTIALS,
                email=f"probe@{org.slug}.example",
            ),
        )

    name = f"probe-{fresh()}.{org.slug}.example"
    response = await org.post("/v1/domains", {"name": name})
    assert response.status_code == 201, response.text
    assert dns_server.CURRENT is not None, "the session's DNS server is not running"
    dns_server.CURRENT.zone.publish(name, response.json()["record"]["value"])
    return {"domain": {"id": name}}


@world_extension
async def departures_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """A running departure of a member of its own (so ``member`` stays active), and a dead
    job to retry."""
    from tenants import db
    from tenants.jobs import service as jobs

    departures, leavers = [], {}
    for n in range(2):  # two, so the list issues a cursor
        leaver = leavers[f"leaver_{n}"] = await make_member(org)
        response = await org.post(
            "/v1/departures",
            {"member_id": leaver["id"], "last_day": datetime.now(UTC).date().isoformat()},
        )
        assert response.status_code == 201, response.text
        departures.append(response.json())
    # A policy naming the organisation's product, so reading it shows one of its ids.
    response = await org.put(
        "/v1/departure-policy", json={"product_actions": {world.product["id"]: "archive"}}
    )
    assert response.status_code == 200, response.text
    async with db.tenant_transaction(org.id):
        key = f"probe:{fresh()}"
        await jobs.enqueue("probe.never-run", {}, key=key)
        await db.connection().execute_query(
            "UPDATE jobs SET status = 'dead', attempts = max_attempts WHERE key = $1", [key]
        )
        job = await db.fetch_one("SELECT id FROM jobs WHERE key = $1", key)
    assert job is not None
    stayer = await make_member(org)
    return {
        "departure": departures[0],
        "dead_job": {"id": str(job["id"])},
        "stayer": stayer,
        **leavers,
    }


@world_extension
async def content_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """A content item of ``member`` in ``product``, and a dead webhook delivery to
    ``spare_product`` (its webhook points at a port nobody listens on)."""
    from tenants import db
    from tenants.webhooks import service as webhooks

    response = await org.post(
        "/v1/content",
        {
            "product_id": world.product["id"],
            "external_id": f"probe-{fresh()}",
            "member_id": world.member["id"],
            "title": "Probe item",
            "kind": "organisation",
        },
    )
    assert response.status_code == 200, response.text
    item = response.json()
    hooked = await org.put(
        f"/v1/products/{world.spare_product['id']}/webhook",
        json={"url": "http://127.0.0.1:9/unreachable"},
    )
    assert hooked.status_code == 200, hooked.text
    product_id = uuid.UUID(world.spare_product["id"])
    async with db.tenant_transaction(org.id):
        await webhooks.publish("probe.event", {}, key=f"probe:{fresh()}", product_ids=[product_id])
        delivery = await db.fetch_one(
            "SELECT id FROM webhook_deliveries WHERE product_id = $1", product_id
        )
        assert delivery is not None
        await db.connection().execute_query(
            "UPDATE webhook_deliveries SET status = 'dead' WHERE id = $1", [delivery["id"]]
        )
        await db.connection().execute_query(
            "UPDATE jobs SET status = 'dead', attempts = max_attempts WHERE key = $1",
            [webhooks.job_key(delivery["id"])],
        )
    return {"content_item": item, "dead_delivery": {"id": str(delivery["id"])}}


@world_extension
async def access_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """An admin's request for ``member``'s data (to approve, deny, revoke or delay), an
    emergency access of theirs (to review), and two checks in the access log; and a token
    a privacy officer made, with which the organisation decides on them (deciding is a
    person's act: a token decides only in the name of an officer who made it)."""
    from tenants import db
    from tenants.access import log as access_log
    from tenants.access import service as access
    from tenants.access.models import DataCategory
    from tenants.actors import Actor, ActorKind
    from tenants.permissions import permissions_of

    response = await org.patch(
        "/v1/access/policy", {"emergency_allowed": True, "max_disclosure_delay_days": 30}
    )
    assert response.status_code == 200, response.text
    admin = await make_member(org, roles=["admin"])
    actor = Actor(ActorKind.MEMBER, admin["id"], "probe admin")
    request = access.NewGrant(
        member_id=uuid.UUID(world.member["id"]),
        unit_id=None,
        categories=[DataCategory.INTERACTION],
        product_ids=None,
        justification="Probing the API with a justified request.",
        duration_hours=4,
    )
    async with db.tenant_transaction(org.id):
        grant = await access.request_access(
            request, permissions=permissions_of(["admin"]), actor=actor
        )
        emergency = await access.request_access(
            replace(request, emergency=True), permissions=permissions_of(["admin"]), actor=actor
        )
        question = access_log.CheckQuestion(
            member_id=uuid.UUID(world.member["id"]),
            product_id=uuid.UUID(world.product["id"]),
            category=DataCategory.INTERACTION,
            admin_id=uuid.UUID(admin["id"]),
        )
        for _ in range(2):
            await access_log.check_access(question, checked_by="tests")
    from tenants.members.roles import ANY_ASSIGNER
    from tenants.permissions import Permission
    from tenants.tokens import service as tokens

    officer = await make_member(org, roles=["privacy_officer"])
    async with db.tenant_transaction(org.id):
        _, decider = await tokens.create_token(
            "probe decisions",
            [p.value for p in Permission],
            expires_in=None,
            actor=Actor(ActorKind.MEMBER, officer["id"], "probe officer"),
            issuer=ANY_ASSIGNER,
        )
    return {
        "access_admin": admin,
        "access_grant": {"id": str(grant.id)},
        "emergency_grant": {"id": str(emergency.id)},
        "access_officer": officer,
        "access_decider": {"token": decider},
    }


@world_extension
async def identity_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """A (local) identity backend and a Shared Signals transmitter, both naming the
    organisation's domain, so their reads have something of this organisation to show."""
    response = await org.put(
        "/v1/identity-backend",
        json={"kind": "local", "server_url": f"https://kc.{org.slug}.example"},
    )
    assert response.status_code == 200, response.text
    response = await org.put(
        "/v1/claims/entra-provider",
        json={
            "entra_tenant_id": str(uuid.uuid4()),
            "app_id": str(uuid.uuid4()),
            "app_id_uri": f"api://entra.{org.slug}.example",
        },
    )
    assert response.status_code == 200, response.text
    response = await org.put(
        "/v1/signal-transmitter",
        json={
            "issuer": f"https://ssf.{org.slug}.example",
            "jwks_uri": f"https://ssf.{org.slug}.example/jwks",
            "audience": "tenantry",
        },
    )
    assert response.status_code == 200, response.text
    return {}


@world_extension
async def privacy_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """An open erasure request of ``member`` whose export is collecting (every queue action,
    the erasure and a product's upload succeed on it), an inquiry, and a privacy officer to
    assign."""
    privacy_officer = await make_member(org, roles=["privacy_officer"])
    response = await org.post(
        "/v1/privacy-requests",
        {"member_id": world.member["id"], "kind": "erasure", "message": "Erase my data."},
    )
    assert response.status_code == 201, response.text
    request = response.json()
    started = await org.post(f"/v1/privacy-requests/{request['id']}/export")
    assert started.status_code == 202, started.text
    inquiry = await org.post(  # a second row, so the queue has a next page
        "/v1/privacy-requests",
        {"member_id": world.member["id"], "kind": "inquiry", "message": "What do you keep?"},
    )
    assert inquiry.status_code == 201, inquiry.text
    return {
        "privacy_request": request,
        "privacy_officer": privacy_officer,
        "privacy_inquiry": inquiry.json(),
    }


@world_extension
async def reviews_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """Two open access reviews (so the list pages); the second reviews the admin roles and
    the product clients, ``client`` being one of its items, which the organisation's token
    may decide (it holds reviews:write)."""
    today = datetime.now(UTC).date()
    for scopes in (["product_clients"], ["admin_roles", "product_clients"]):
        response = await org.post(
            "/v1/access-reviews",
            {
                "name": "Probe review",
                "scopes": scopes,
                "reviewer_rule": "named",
                "named_reviewer_ids": [world.member["id"]],
                "starts_on": today.isoformat(),
                "due_on": (today + timedelta(days=7)).isoformat(),
                "default_on_due": "keep",
            },
        )
        assert response.status_code == 201, response.text
    review = response.json()
    items = await org.get(f"/v1/access-reviews/{review['id']}/items", params={"limit": 500})
    assert items.status_code == 200, items.text
    (item,) = [i for i in items.json()["items"] if i["client_id"] == world.client["id"]]
    return {"access_review": review, "access_review_item": item}


async def build_world(org: OrgHandle) -> World:
    unit = await make_unit(org)
    other_unit = await make_unit(org)
    member = await make_member(org)
    group = await make_group(org)
    response = await org.put(f"/v1/groups/{group['id']}/members/{member['id']}")
    assert response.status_code == 204, response.text
    product = await make_product(org)
    spare_product = await make_product(org)
    response = await org.post(
        "/v1/product-accounts", {"member_id": member["id"], "product_id": product["id"]}
    )
    assert response.status_code == 201, response.text
    account = response.json()
    response = await org.post(
        f"/v1/products/{spare_product['id']}/clients",
        {"name": "probe client", "scopes": ["members:read"]},
    )
    assert response.status_code == 201, response.text
    client = response.json()
    response = await org.put(
        "/v1/sso-connection",
        json={"issuer": f"https://idp.{org.slug}.example", "client_id": f"tenantry-{org.slug}"},
    )
    assert response.status_code == 200, response.text
    sso = response.json()
    response = await org.put(
        "/v1/policy/rules",
        json={
            "target_kind": "unit",
            "target_id": other_unit["id"],
            "setting": SETTING,
            "value": True,
            "reason": "probe",
        },
    )
    assert response.status_code == 200, response.text
    rule = response.json()
    response = await org.put(
        "/v1/settings/declared",
        json={"product_id": product["id"], "settings": [declaration(product)]},
    )
    assert response.status_code == 200, response.text
    response = await org.post(
        f"/v1/members/{member['id']}/choices", {"setting": "cookies.preferences", "value": False}
    )
    assert response.status_code == 200, response.text
    world = World(
        org, unit, other_unit, member, group, product, spare_product, account, client, sso, rule
    )
    for extend in WORLD_EXTENSIONS:
        world.extra.update(await extend(org, world))
    return world


async def send(
    org: OrgHandle, operation: Operation, url: str, body: Any, **kw: Any
) -> httpx.Response:
    """``operation`` on ``url`` with ``org``'s credentials (or ``headers`` given in ``kw``);
    a list body of an NDJSON operation goes as one JSON line per record, of a CSV one as a
    header line and one line per record."""
    headers = kw.pop("headers", org.headers)
    if operation.stream_media == CSV and isinstance(body, list):
        columns = sorted({key for record in body for key in record})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for record in body:
            writer.writerow(["" if record.get(c) is None else str(record.get(c)) for c in columns])
        return await org.client.request(
            operation.method,
            url,
            content=out.getvalue().encode(),
            headers={**headers, "content-type": CSV},
            **kw,
        )
    if operation.record_schema is not None and isinstance(body, list):
        content = b"".join(json.dumps(record).encode() + b"\n" for record in body)
        headers = {**headers, "content-type": NDJSON}
        return await org.client.request(
            operation.method, url, content=content, headers=headers, **kw
        )
    return await org.client.request(operation.method, url, json=body, headers=headers, **kw)


def assert_problem(response: httpx.Response, status: int) -> JSON:
    """The response is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
    problem: JSON = response.json()
    for member in ("type", "title", "status", "detail"):
        assert member in problem, problem
    assert problem["status"] == status
    assert problem["type"].startswith("/problems/")
    assert problem["detail"]
    return problem


def error_fields(problem: JSON) -> dict[str, str]:
    """``{field: reason}`` of a validation problem; every entry must have both."""
    errors = problem.get("errors")
    assert isinstance(errors, list) and errors, f"the problem names no field: {problem}"
    found = {}
    for entry in errors:
        assert set(entry) == {"field", "reason"}, entry
        assert entry["field"] and entry["reason"], entry
        found[entry["field"]] = entry["reason"]
    return found
