"""What the served OpenAPI document declares, beyond what each resource's tests check."""

from __future__ import annotations

import httpx

from tests.support.api_schema import operations, served_document


async def test_not_modified_is_declared_without_a_body(client: httpx.AsyncClient) -> None:
    """304 has no body (RFC 9110 15.4.5); the document once gave it a problem+json one."""
    document = await served_document(client)
    declared = [
        o.spec["responses"]["304"] for o in operations(document) if "304" in o.spec["responses"]
    ]
    assert len(declared) >= 2  # a member's settings and the effective settings
    assert [r for r in declared if "content" in r] == []
