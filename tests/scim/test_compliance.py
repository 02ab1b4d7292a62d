"""The scim2-tester compliance suite against the running service: every check passes.

The report (one line per check and its status) is printed, so CI logs show it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tenants.permissions import Permission
from tests.conftest import OrgHandle

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def _run(base_url: str, token: str) -> list[Any]:
    with httpx2.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        client = SyncSCIMClient(http)
        return check_server(client)


@pytest.mark.slow
async def test_every_scim2_tester_check_passes(org: OrgHandle, live_server: str) -> None:
    token = await org.token_with(Permission.SCIM_PROVISION)
    results = await asyncio.to_thread(_run, f"{live_server}/scim/v2", token)
    print(f"\nscim2-tester: {len(results)} checks")
    for result in results:
        where = f"[{result.resource_type}] " if result.resource_type else ""
        print(f"  {result.status.name:<10} {where}{result.title}: {result.reason or ''}"[:300])
    counts = Counter(r.status.name for r in results)
    print("scim2-tester summary:", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    failing = [r for r in results if r.status not in PASSING]
    assert not failing, "\n".join(
        f"{r.status.name} {r.title} {r.resource_type}: {r.reason}" for r in failing
    )
