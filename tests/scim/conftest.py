"""Fixtures of the SCIM tests: an organisation with a SCIM token, and a client that speaks
``application/scim+json`` to ``/scim/v2``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tenants.permissions import Permission
from tests.conftest import OrgHandle, make_org

SCIM_JSON = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass
class Scim:
    """A SCIM client of one organisation (its token carries only ``scim:provision``)."""

    org: OrgHandle
    token: str
    client: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM_JSON}

    async def request(
        self, method: str, path: str, body: Any = None, **headers: str
    ) -> httpx.Response:
        return await self.client.request(
            method, f"/scim/v2{path}", json=body, headers={**self.headers, **headers}
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/scim/v2{path}", params=params, headers=self.headers)

    async def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return await self.request("POST", path, body, **headers)

    async def put(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return await self.request("PUT", path, body, **headers)

    async def patch(self, path: str, *operations: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.request(
            "PATCH", path, {"schemas": [PATCH_URN], "Operations": list(operations)}, **headers
        )

    async def delete(self, path: str, **headers: str) -> httpx.Response:
        return await self.request("DELETE", path, **headers)

    async def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        response = await self.post(
            "/Users", {"schemas": [USER_URN], "userName": user_name, **attributes}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


async def scim_for(org: OrgHandle) -> Scim:
    return Scim(org, await org.token_with(Permission.SCIM_PROVISION), org.client)


@pytest.fixture
async def scim(org: OrgHandle) -> Scim:
    return await scim_for(org)


@pytest.fixture
async def other_org(client: httpx.AsyncClient) -> OrgHandle:
    return await make_org(client)
