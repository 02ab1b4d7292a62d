"""The served OpenAPI document as test data: its operations, and request bodies built from it.

Tests that must hold for every route (isolation, validation, scopes) walk the document the
app serves instead of a hand-kept list of routes, so a route is covered the day it is
declared. What the document cannot say (which existing row a path id should name, which
body makes a write actually change something) lives in the small tables of ``World``; a new
resource prefix fails loudly here until it is added to them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import OrgHandle, make_group, make_member, make_product, make_unit

JSON = dict[str, Any]

PATH_PARAM = re.compile(r"{(\w+)}")
PROBLEM_JSON = "application/problem+json"


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
        body = self.spec.get("requestBody")
        if body is None:
            return None
        return resolve(self.document, body["content"]["application/json"]["schema"])

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
}

#: Other path parameters → the World attribute they name.
RESOURCE_BY_PARAM = {"member_id": "member", "client_id": "client"}

#: A setting members may choose and the organisation may set (from the built-in catalogue).
SETTING = "cookies.analytics"

Table = dict[str, Callable[["World"], JSON]]

#: Bodies (merged over the required properties) that make each write change something, so a
#: request refused for isolation or permission is one that would otherwise have succeeded.
CHANGES: Table = {
    "PATCH /v1/organisation": lambda w: {"name": f"Renamed Organisation {fresh()}"},
    "PATCH /v1/units/{id}": lambda w: {"name": f"renamed-unit-{fresh()}"},
    "PATCH /v1/members/{id}": lambda w: {"name": f"Renamed Member {fresh()}"},
    "POST /v1/members/{id}/transitions": lambda w: {"action": "suspend", "reason": "probe"},
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
}

#: Query parameters an operation needs to answer 200 (the document marks few as required).
QUERIES: Table = {
    "GET /v1/effective-settings": lambda w: {"email": w.member["email"]},
    "GET /v1/policy/diff": lambda w: {"from": 0, "to": 1},
}


def fresh() -> str:
    return uuid.uuid4().hex[:8]


def declaration(product: JSON) -> JSON:
    """A product's own setting, declared through PUT /v1/settings/declared."""
    return {
        "key": f"{product['key']}.probe-{fresh()}",
        "type": "bool",
        "default": True,
        "title": "Probe setting",
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
                ids[name] = self.resource(RESOURCE_BY_PREFIX[operation.prefix])["id"]
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

    def body(self, operation: Operation) -> JSON | None:
        """A body that is valid for ``operation`` and changes something; None without a body."""
        schema = operation.body_schema
        if schema is None:
            return None
        body = valid_object(operation.document, schema, self.body_ids, self.org.slug)
        body.update(CHANGES.get(operation.key, lambda w: {})(self))
        return body

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
        found |= {str(value["id"]) for value in self.extra.values() if "id" in value}
        return found


#: Builders of resources for later features' routes: each adds entries to ``extra`` (name →
#: resource with an ``id``), for RESOURCE_BY_PREFIX / RESOURCE_BY_PARAM / CHANGES to name.
WorldExtension = Callable[[OrgHandle, "World"], Awaitable[dict[str, JSON]]]
WORLD_EXTENSIONS: list[WorldExtension] = []


def world_extension(fn: WorldExtension) -> WorldExtension:
    WORLD_EXTENSIONS.append(fn)
    return fn


@world_extension
async def departures_world(org: OrgHandle, world: World) -> dict[str, JSON]:
    """A running departure of a member of its own (so ``member`` stays active), and a dead
    job to retry."""
    from tenants import db
    from tenants.jobs import service as jobs

    leaver = await make_member(org)
    response = await org.post(
        "/v1/departures",
        {"member_id": leaver["id"], "last_day": datetime.now(UTC).date().isoformat()},
    )
    assert response.status_code == 201, response.text
    async with db.tenant_transaction(org.id):
        key = f"probe:{fresh()}"
        await jobs.enqueue("probe.never-run", {}, key=key)
        await db.connection().execute_query(
            "UPDATE jobs SET status = 'dead', attempts = max_attempts WHERE key = $1", [key]
        )
        job = await db.fetch_one("SELECT id FROM jobs WHERE key = $1", key)
    assert job is not None
    stayer = await make_member(org)
    return {"departure": response.json(), "dead_job": {"id": str(job["id"])}, "stayer": stayer}


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
    org: OrgHandle, operation: Operation, url: str, body: JSON | None, **kw: Any
) -> httpx.Response:
    """``operation`` on ``url`` with ``org``'s credentials (or ``headers`` given in ``kw``)."""
    headers = kw.pop("headers", org.headers)
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
