"""The discovery documents (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas.

They describe the service, not an organisation, so they are served without a
credential (a client configures itself before it has one) and are the same for all.
"""

from __future__ import annotations

from typing import Any

from tenants.scim.schemas import (
    ENTERPRISE_URN,
    KINDS,
    LIST_URN,
    ResourceKind,
    published_schemas,
    schema_document,
)

SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_URN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
#: Bulk limits announced and enforced (RFC 7644 §3.7.4).
MAX_OPERATIONS = 1000
MAX_PAYLOAD = 4 * 1024 * 1024
#: Most resources one query returns (``filter.maxResults``).
MAX_RESULTS = 1000


def service_provider_config(base: str) -> dict[str, Any]:
    """RFC 7643 §5: what this service provider supports."""
    return {
        "schemas": [SPC_URN],
        "patch": {"supported": True},
        "bulk": {"supported": True, "maxOperations": MAX_OPERATIONS, "maxPayloadSize": MAX_PAYLOAD},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token of the organisation (an API token with the "
                "scim:provision permission), created in the console under Provisioning.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def resource_type(kind: ResourceKind, base: str) -> dict[str, Any]:
    """RFC 7643 §6."""
    doc: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE_URN],
        "id": kind.name,
        "name": kind.name,
        "endpoint": kind.endpoint,
        "description": "Members of the organisation"
        if kind.name == "User"
        else "Groups of members",
        "schema": kind.core,
    }
    if kind.extensions:
        doc["schemaExtensions"] = [{"schema": ENTERPRISE_URN, "required": False}]
    doc["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{kind.name}"}
    return doc


def resource_types(base: str) -> list[dict[str, Any]]:
    return [resource_type(kind, base) for kind in KINDS]


def schemas(base: str) -> list[dict[str, Any]]:
    return [schema_document(urn, base) for urn in published_schemas()]


def list_response(resources: list[dict[str, Any]], total: int, start: int = 1) -> dict[str, Any]:
    """RFC 7644 §3.4.2: the ListResponse message."""
    return {
        "schemas": [LIST_URN],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start,
        "Resources": resources,
    }
