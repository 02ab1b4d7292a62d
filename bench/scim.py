"""What SCIM provisioning costs against the product's own paths, measured in the same run.

Two figures:

- ``scim_patch_vs_native``: p95 latency of ``PATCH /scim/v2/Users/{id}`` replacing a
  User's ``displayName`` (a SCIM token; the answer is the whole User with its ETag)
  divided by p95 of ``PATCH /v1/members/{id}`` changing the same member's ``name`` (an
  API token with ``members:write``; the answer is the member). Same server process
  (``create_app`` as ``tenantry serve`` builds it, one uvicorn worker, its own process),
  same members, one client connection each, requests one after another, rounds
  interleaved with the order alternating. Goal <= 1.5.
- ``scim_bulk_vs_raw``: wall time of an initial sync of N Users (10,000; ``--quick``
  500) through ``POST /scim/v2/Bulk`` in requests of 1,000 operations (the
  announced ``maxOperations``), one after another, divided by the time of a raw SQL
  insert of the same rows in one transaction as the runtime role: the members, their
  SCIM rows, and one audit event (and its sealing-queue row) per member, each table in
  one ``INSERT … SELECT unnest(…)``, the row values computed before the clock starts.
  Both clocks stop once every audit event is sealed into the organisation's hash chain
  (``seal_all(wait=True)`` in this process, as ``bench/audit.py`` ends its rounds): the
  chain is part of writing an audited row, whoever wrote it. The sealer runs as a
  deployment runs it, in a ``tenantry worker`` process beside the app server (a web node,
  which seals nothing), for both. Each round provisions a fresh organisation. Goal <= 3.0.

Run: ``python bench/scim.py [--quick]``. ``BENCH_DATABASE_URL`` = a superuser URL of a
server of your own, else the embedded server in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    AppServer,
    BenchDatabase,
    Figures,
    argument_parser,
    bench_database,
    connect,
    console,
    fail,
    machine_load,
    percentile,
    report,
    serve,
    server_facts,
    server_url,
    worker_process,
)

from tenants.audit.sealer import seal_all  # _common puts the checkout on sys.path

SCRIPT = Path(__file__).resolve()
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BATCH = 1000


@dataclass(frozen=True)
class Config:
    members: int
    patch_rounds: int
    patches_per_round: int
    sync_users: int
    sync_rounds: int
    #: PATCHes of each route before the rounds, not counted.
    warmup_patches: int


#: A smoke test: every route, round and figure of the full run, a few dozen requests each.
QUICK = Config(members=50, patch_rounds=1, patches_per_round=40, sync_users=500, sync_rounds=1, warmup_patches=10)
FULL = Config(members=500, patch_rounds=8, patches_per_round=400, sync_users=10_000, sync_rounds=3,
              warmup_patches=50)


def parse_args() -> argparse.Namespace:
    # --seed is accepted like every benchmark's but unused: the data is deterministic.
    return argument_parser((__doc__ or "").splitlines()[0], serves=True).parse_args()


async def new_organisation(bench: BenchDatabase, label: str) -> tuple[uuid.UUID, str, str]:
    """An organisation made by the product, with a SCIM token and a members:write token."""
    from tenants import db
    from tenants.actors import system_actor
    from tenants.organisations import service as organisations
    from tenants.organisations.models import OrganisationKind
    from tenants.scim import service as scim
    from tenants.tokens import service as tokens

    actor = system_actor("bench")
    slug = f"{label}-{uuid.uuid4().hex[:6]}"
    org = await organisations.create_organisation(
        slug=slug,
        name=slug,
        kind=OrganisationKind.EMPLOYER,
        domains=[f"{slug}.example"],
        actor=actor,
    )
    async with db.tenant_transaction(org.id):
        _, scim_token = await scim.create_token("bench", actor=actor)
        _, api_token = await tokens.create_token(
            "bench", ["members:write", "members:read"], expires_in=None, actor=actor
        )
    await seal_all(wait=True)
    return org.id, scim_token, api_token


def user_body(i: int, domain: str) -> dict[str, Any]:
    return {
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": f"user{i}@{domain}",
        "externalId": f"ext-{i}",
        "name": {"givenName": f"Given{i}", "familyName": "Family"},
        "displayName": f"Given{i} Family",
        "emails": [{"value": f"user{i}@{domain}", "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE_URN: {"department": "Engineering", "employeeNumber": str(i)},
    }


async def bulk_sync(client: httpx.AsyncClient, token: str, users: int, domain: str) -> float:
    """Seconds to provision ``users`` Users through Bulk, in requests of BATCH operations."""
    bodies = []
    for start in range(0, users, BATCH):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": user_body(i, domain)}
            for i in range(start, min(start + BATCH, users))
        ]
        bodies.append(json.dumps({"schemas": [BULK_URN], "Operations": operations}).encode())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    started = time.perf_counter()
    for body in bodies:
        response = await client.post("/scim/v2/Bulk", content=body, headers=headers, timeout=120)
        response.raise_for_status()
        statuses = {op["status"] for op in response.json()["Operations"]}
        if statuses != {"201"}:
            raise RuntimeError(f"bulk answered {statuses}: {response.text[:500]}")
    await seal_all(wait=True)
    return time.perf_counter() - started


async def raw_insert(bench: BenchDatabase, org_id: uuid.UUID, users: int, domain: str) -> float:
    """Seconds to insert the rows a sync of ``users`` Users writes, as raw SQL, in one
    transaction of the runtime role (row-level security on, as for the service)."""
    conn = await connect(bench.urls.app)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))
            root = await conn.fetchval(
                "SELECT id FROM units WHERE tenant_id = $1 AND parent_id IS NULL", org_id
            )
        ids = [uuid.uuid4() for _ in range(users)]
        emails = [f"user{i}@{domain}" for i in range(users)]
        names = [f"Given{i} Family" for i in range(users)]
        externals = [f"ext-{i}" for i in range(users)]
        docs = []
        for i in range(users):
            doc = user_body(i, domain)
            for key in ("schemas", "userName", "externalId", "active"):
                doc.pop(key)
            docs.append(json.dumps(doc))
        afters = [
            json.dumps(
                {
                    "email": e,
                    "name": n,
                    "unit_id": str(root),
                    "manager_id": None,
                    "roles": ["member"],
                    "idp_subject": None,
                    "external_id": x,
                    "status": "active",
                }
            )
            for e, n, x in zip(emails, names, externals, strict=True)
        ]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))
            await conn.execute(
                """
                INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status, status_changed_at,
                                     external_id, created_at, updated_at)
                SELECT t.id, $1, t.email, t.name, $2, '["member"]'::jsonb, 'active', now(), t.external_id,
                       now(), now()
                  FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[]) AS t(id, email, name, external_id)
                """,
                org_id,
                root,
                ids,
                emails,
                names,
                externals,
            )
            await conn.execute(
                """
                INSERT INTO scim_users (id, tenant_id, user_name, attributes, created_at, updated_at)
                SELECT t.id, $1, t.user_name, t.doc::jsonb, now(), now()
                  FROM unnest($2::uuid[], $3::text[], $4::text[]) AS t(id, user_name, doc)
                """,
                org_id,
                ids,
                emails,
                docs,
            )
            await conn.execute(
                """
                WITH recorded AS (
                  INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, target_type,
                                            target_id, before, after)
                  SELECT $1, now(), 'system:bench', 'bench', 'member.created', 'member', t.id::text, NULL,
                         t.after::jsonb
                    FROM unnest($2::uuid[], $3::text[]) AS t(id, after)
                  RETURNING tenant_id, id
                )
                INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded
                """,
                org_id,
                ids,
                afters,
            )
        await seal_all(wait=True)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def settled() -> None:
    """Seal every event written so far (what the worker has not reached yet is sealed
    here), so each timed sync starts with an empty sealing queue: the events of the
    previous steps would otherwise be chained inside the next step's clock."""
    await seal_all(wait=True)


async def provision_members(
    client: httpx.AsyncClient, token: str, count: int, domain: str
) -> list[str]:
    """Members for the PATCH rounds, provisioned through SCIM (so both routes find them)."""
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    for start in range(0, count, BATCH):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"m{i}", "data": user_body(i, domain)}
            for i in range(start, min(start + BATCH, count))
        ]
        response = await client.post(
            "/scim/v2/Bulk",
            json={"schemas": [BULK_URN], "Operations": operations},
            headers=headers,
            timeout=120,
        )
        response.raise_for_status()
        ids += [op["location"].rsplit("/", 1)[1] for op in response.json()["Operations"]]
    return ids


async def patch_round(
    client: httpx.AsyncClient, kind: str, token: str, ids: list[str], n: int, offset: int
) -> list[float]:
    latencies = []
    for k in range(n):
        member_id = ids[(offset + k) % len(ids)]
        name = f"Renamed {offset + k}"
        started = time.perf_counter()
        if kind == "scim":
            response = await client.patch(
                f"/scim/v2/Users/{member_id}",
                json={
                    "schemas": [PATCH_URN],
                    "Operations": [{"op": "replace", "path": "displayName", "value": name}],
                },
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/scim+json",
                },
            )
        else:
            response = await client.patch(
                f"/v1/members/{member_id}",
                json={"name": name},
                headers={"Authorization": f"Bearer {token}"},
            )
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(
                f"{kind} PATCH answered {response.status_code}: {response.text[:300]}"
            )
    return latencies


async def main_async(args: argparse.Namespace) -> Figures:
    cfg = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-scim-"))
    try:
        with server_url() as server:
            console.print(await server_facts(server))
            console.print(f"at start: {machine_load()}")
            async with bench_database(server) as bench:
                app = AppServer(SCRIPT, workdir, bench.urls)
                app.start()
                try:
                    with worker_process(bench):
                        await app.wait_ready()
                        return await measure(cfg, bench, app)
                finally:
                    app.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(cfg: Config, bench: BenchDatabase, app: AppServer) -> Figures:
    from app.runtime import orm

    async with (
        orm(bench.urls, pool_size=2),
        httpx.AsyncClient(base_url=app.url, timeout=60) as client,
    ):
        _, scim_token, api_token = await new_organisation(bench, "patch")
        ids = await provision_members(client, scim_token, cfg.members, "patch.example")
        await patch_round(client, "scim", scim_token, ids, cfg.warmup_patches, 0)  # warm-up, not counted
        await patch_round(client, "native", api_token, ids, cfg.warmup_patches, 0)
        scim: list[float] = []
        native: list[float] = []
        for r in range(cfg.patch_rounds):
            order = [("scim", scim_token, scim), ("native", api_token, native)]
            for kind, token, into in order if r % 2 == 0 else reversed(order):
                into += await patch_round(
                    client, kind, token, ids, cfg.patches_per_round, r * cfg.patches_per_round
                )
        console.rule(
            f"PATCH of one User/member ({len(scim)} requests each, one at a time, interleaved)"
        )
        for name, values in (
            ("SCIM PATCH /scim/v2/Users/{id}", scim),
            ("native PATCH /v1/members/{id}", native),
        ):
            console.print(
                f"{name:<34} p50 {percentile(values, 50) * 1e3:6.2f} ms   "
                f"p95 {percentile(values, 95) * 1e3:6.2f} ms   p99 {percentile(values, 99) * 1e3:6.2f} ms"
            )
        patch_ratio = percentile(scim, 95) / percentile(native, 95)

        scim_times: list[float] = []
        raw_times: list[float] = []
        for r in range(cfg.sync_rounds):

            async def scim_sync(r: int = r) -> None:
                _, token, _ = await new_organisation(bench, "sync")
                scim_times.append(
                    await bulk_sync(client, token, cfg.sync_users, f"sync{r}.example")
                )

            async def raw_sync(r: int = r) -> None:
                org, _, _ = await new_organisation(bench, "raw")
                raw_times.append(await raw_insert(bench, org, cfg.sync_users, f"raw{r}.example"))

            for step in (scim_sync, raw_sync) if r % 2 == 0 else (raw_sync, scim_sync):
                await settled()
                await step()
        console.rule(
            f"initial sync of {cfg.sync_users:,} Users ({cfg.sync_rounds} rounds, fresh organisation each)"
        )
        console.print(
            f"SCIM Bulk ({BATCH} operations a request): "
            + ", ".join(f"{t:.2f} s" for t in scim_times)
            + f"  ({cfg.sync_users / statistics.median(scim_times):,.0f} Users/s)"
        )
        console.print(
            "raw SQL insert of the same rows:       "
            + ", ".join(f"{t:.2f} s" for t in raw_times)
            + f"  ({cfg.sync_users / statistics.median(raw_times):,.0f} rows/s per table)"
        )
        bulk_ratio = statistics.median(scim_times) / statistics.median(raw_times)
        errors = app.log_tail(200_000).count('"status": 5')
        if errors:
            raise fail(f"{errors} server errors in the app's log")
    return [
        ("scim_patch_vs_native", patch_ratio, "<=", 1.5),
        ("scim_bulk_vs_raw", bulk_ratio, "<=", 3.0),
    ]


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, embedded_worker=False)
        return
    started = time.perf_counter()
    figures = asyncio.run(main_async(args))
    report(figures, started=started, quick=args.quick)


if __name__ == "__main__":
    main()
