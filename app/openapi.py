"""The OpenAPI 3.1 document, written from the same endpoint declarations that serve requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api import NAME_PARAMS, Endpoint, NoQuery, versioned
from app.problems import STATUS_BY_CODE

REF = "#/components/schemas/{model}"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "Stable identifier of the problem: /problems/<code>.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

ERROR_TEXT = {
    304: "Not modified since the ETag sent in If-None-Match",
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "The credentials lack the permission",
    404: "Not found (also for other organisations' ids)",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Body too large",
    412: "If-Match names a version that is no longer current; nothing was changed",
    415: "Body is not of the media type the operation takes",
    422: "Invalid input; see errors",
    500: "Internal error",
    503: "The database (or a service it depends on, such as DNS) is not reachable right "
    "now; nothing was changed, retry after Retry-After",
}


ETAG_HEADER = {
    "description": "The version of the resource, for If-Match on its writes and "
    "If-None-Match on this read.",
    "schema": {"type": "string"},
}
#: The header parameters of conditional requests (RFC 9110 §13.1).
CONDITION: dict[str, dict[str, Any]] = {
    "If-None-Match": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "An ETag this resource was read with: 304 while it is still current.",
        "schema": {"type": "string"},
    },
    "If-Match": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "The ETag the resource was read with: the change is made only if "
        "nobody has changed it since (412 otherwise; * for any current version).",
        "schema": {"type": "string"},
    },
}


def build_openapi(
    endpoints: list[Endpoint], *, title: str, version: str, server_url: str | None
) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for e in endpoints:
        pairs: tuple[tuple[type[BaseModel] | None, Literal["validation", "serialization"]], ...] = (
            (e.body, "validation"),
            (e.query, "validation"),
            (e.response, "serialization"),
            (e.stream.item if e.stream else None, "validation"),
        )
        for model, mode in pairs:
            if model is not None and (model, mode) not in models:
                models.append((model, mode))
    keyed, definitions = models_json_schema(models, ref_template=REF)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA

    resources = versioned(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        current = resources.get(e.path) if e.method != "POST" else None
        operation: dict[str, Any] = {
            "operationId": e.operation_id,
            "summary": e.summary,
            "tags": [e.tag],
            "parameters": _parameters(e, keyed, schemas),
            "responses": {},
        }
        if e.description:
            operation["description"] = e.description
        if e.permission is not None:
            operation["security"] = [{"bearer": [e.permission.value]}]
            operation["x-permission"] = e.permission.value
        if e.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keyed[(e.body, "validation")]}},
            }
        if e.stream is not None:
            # OpenAPI 3.1 has no schema for a sequence of records (3.2's itemSchema). A CSV
            # body is text: declared as a string (a client generating bodies from the row's
            # object schema sent JSON objects as CSV), its row's schema beside it under
            # ``x-row-schema``. An NDJSON body's schema is that of each line.
            row = keyed[(e.stream.item, "validation")]
            csv = e.stream.media_type == "text/csv"
            operation["requestBody"] = {
                "required": True,
                "description": (
                    f"A CSV file ({e.stream.media_type}) with a header line; each line's "
                    f"cells as the fields of x-row-schema; at most {e.stream.max_bytes} bytes."
                    if csv
                    else f"One JSON object per line ({e.stream.media_type}), each "
                    f"matching the schema; at most {e.stream.max_bytes} bytes."
                ),
                "content": {
                    e.stream.media_type: {
                        "schema": {"type": "string", "maxLength": e.stream.max_bytes}
                        if csv
                        else row,
                        **({"x-row-schema": row} if csv else {}),
                    }
                },
            }
        if e.response is not None and e.status != 204:
            operation["responses"][str(e.status)] = {
                "description": "Success",
                "content": {
                    "application/json": {"schema": keyed[(e.response, "serialization")]},
                    # Other forms of the same answer (a download chosen by a parameter).
                    **{media: {"schema": {"type": "string"}} for media in e.alternatives},
                },
            }
        elif e.alternatives:
            # A download only (a CSV export): its media types, no JSON form.
            operation["responses"][str(e.status)] = {
                "description": "Success",
                "content": {media: {"schema": {"type": "string"}} for media in e.alternatives},
            }
        else:
            operation["responses"][str(e.status)] = {"description": "Done; no content"}
        # Any operation meets a database that is restarting: a 503 (app/outage.py); and
        # any refuses a query parameter it does not know (422 naming ``query.<name>``).
        statuses = set(e.errors) | {400, 401, 403, 422, 503}
        if current is e:
            statuses |= {304}
            operation["parameters"].append(CONDITION["If-None-Match"])
            operation["responses"][str(e.status)]["headers"] = {"ETag": ETAG_HEADER}
        elif current is not None:
            statuses |= {412}
            operation["parameters"].append(CONDITION["If-Match"])
        if e.method != "GET":
            # Any write can clash with a concurrent one (a uniqueness race, a deadlock):
            # a 409 asking to retry, nothing written (app/api.py).
            statuses |= {409}
        if e.body is not None or e.stream is not None:
            statuses |= {413, 415}
        if e.path_params:
            statuses |= {404}
        for status in sorted(statuses):
            operation["responses"][str(status)] = {
                "description": ERROR_TEXT.get(status, "Error"),
                "content": {
                    "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
                },
            }
            if status == 304:  # Not Modified has no body (RFC 9110 15.4.5)
                del operation["responses"][str(status)]["content"]
        paths.setdefault(e.path, {})[e.method.lower()] = operation

    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Organisation-administered account governance. Every error is an RFC 9457 "
                "problem document; ids of another organisation answer 404."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An organisation API token (tnt_…) created with `tenantry token create`.",
                }
            },
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    assert set(STATUS_BY_CODE.values()) <= set(ERROR_TEXT)
    return document


def _parameters(
    e: Endpoint, keyed: dict[Any, Any], schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": (
                {"type": "string", "maxLength": 253, "description": NAME_PARAMS[name]}
                if name in NAME_PARAMS
                else {"type": "string", "format": "uuid"}
            ),
        }
        for name in e.path_params
    ]
    if e.query is None or e.query is NoQuery:
        return params
    schema = schemas[keyed[(e.query, "validation")]["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        entry: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            entry["description"] = description
        params.append(entry)
    return params


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query string cannot carry JSON null: drop it from optional parameters' schemas."""
    options = schema.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        schema.pop("anyOf")
        if len(kept) == 1:
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if schema.get("default", ...) is None:
        schema.pop("default")
    return schema
