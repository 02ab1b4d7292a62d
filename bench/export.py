"""How long building a privacy export takes for a member with 100,000 content items, against
dumping the same rows raw into a ZIP, measured in the same run on the same data.

One figure:

- ``export_vs_raw``: median seconds of the product's ``build_export`` (the job's unit of
  work: Tenantry's own JSON files about the member — profile, groups, accounts, settings,
  content items, data access, requests, audit events — the products' uploaded parts and a
  README, zipped, stored as ``bytea``, with its timeline entry, audit event, email and
  expiry job, committed) divided by median seconds of the baseline: the same content-item
  columns for the same member read with ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` as the
  runtime role under row-level security and deflated into a ZIP at the same level, in
  memory (asyncpg's ``copy_from_query``, which wraps it in ``COPY (…) TO STDOUT``). Goal
  <= 3.0.

Rounds alternate (A B, B A, …). Between rounds the export is put back to ``collecting``
(as the superuser) so the same build runs again.

Data: one organisation made by ``create_organisation``, one member with two products
(accounts in both, one with an uploaded 200 KB part), 100,000 content items (``--quick``:
5,000) inserted with one ``INSERT … SELECT generate_series``, an open access request and
its export.

Run: ``python bench/export.py [--quick]`` (``BENCH_DATABASE_URL`` = a superuser URL of a
server of your own; otherwise the embedded server in a temporary folder).
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import time
import uuid
import zipfile
from dataclasses import dataclass

from _common import (
    bench_database,
    connect,
    console,
    machine_load,
    meets,
    parse_args,
    ratio_line,
    server_facts,
    server_url,
)

from app.runtime import orm
from tenants import db
from tenants.actors import Actor, ActorKind, system_actor
from tenants.ids import OrgId
from tenants.members import service as members
from tenants.members.lifecycle import MemberStatus
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind
from tenants.products.models import Product, ProductAccount
from tenants.requests import bundle, fulfilment, service
from tenants.requests.models import PrivacyExport, PrivacyExportPart, RequestKind, RequestSource
from tenants.units.models import Unit


@dataclass(frozen=True, slots=True)
class Config:
    items: int
    rounds: int


QUICK = Config(items=5_000, rounds=1)
FULL = Config(items=100_000, rounds=5)

ITEMS_SQL = """
INSERT INTO content_items (id, tenant_id, member_id, product_id, external_id, title, kind,
                           size, item_created_at, legal_hold, export_url, status,
                           transfer_count, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, CASE WHEN g % 3 = 0 THEN $4::uuid ELSE $3::uuid END, 'item-' || g,
       'Document number ' || g || '.docx', CASE WHEN g % 5 = 0 THEN 'personal' ELSE 'organisation' END,
       1000 + g * 7, now() - make_interval(days => g % 900), g % 97 = 0,
       'https://drive.example/export/item-' || g, 'active', 0, now(), now()
  FROM generate_series(1, $5) AS g
"""

#: The baseline reads the same columns the export writes for each item.
RAW_SQL = """
SELECT c.id, p.key, c.external_id, c.title, c.kind, c.size, c.item_created_at, c.created_at,
       c.status, c.legal_hold, c.export_url
  FROM content_items c JOIN products p ON p.tenant_id = c.tenant_id AND p.id = c.product_id
 WHERE c.tenant_id = $1 AND c.member_id = $2 ORDER BY c.id
"""


def actor() -> Actor:
    return Actor(ActorKind.API_TOKEN, "bench-token", "bench token", request_id=uuid.uuid4().hex,
                 client_addr="127.0.0.1")


async def load(items: int) -> tuple[OrgId, uuid.UUID, uuid.UUID]:
    """The organisation, its member and the export of the member's access request."""
    slug = f"bench-{uuid.uuid4().hex[:10]}"
    org = await organisations.create_organisation(
        slug=slug, name="Bench Corporation", kind=OrganisationKind.EMPLOYER,
        domains=[f"{slug}.example"], actor=actor(),
    )
    org_id = OrgId(org.id)
    async with db.tenant_transaction(org_id):
        root = await Unit.get(parent_id=None)
        member = await members.create_member(
            members.NewMember(email=f"mia@{slug}.example", name="Mia Member", unit_id=root.id,
                              status=MemberStatus.ACTIVE),
            actor=actor(),
        )
        drive = await Product.create(tenant_id=org_id, key="drive", name="Drive")
        chat = await Product.create(tenant_id=org_id, key="chat", name="Chat")
        for product in (drive, chat):
            await ProductAccount.create(tenant_id=org_id, member_id=member.id,
                                        product_id=product.id)
        started = time.perf_counter()
        await db.connection().execute_query(
            ITEMS_SQL, [org_id, member.id, drive.id, chat.id, items]
        )
        console.print(f"{items:,} content items inserted in {time.perf_counter() - started:.1f} s")
        request, _ = await service.submit_request(
            member.id, RequestKind.ACCESS, "Everything, please.", actor=actor(),
            source=RequestSource.API,
        )
        export = await fulfilment.start_export(request.id, actor=actor())
        part = json.dumps({"messages": [{"id": n, "subject": f"Message {n}"}
                                        for n in range(5_000)]}).encode()
        await PrivacyExportPart.create(tenant_id=org_id, export_id=export.id,
                                       product_id=drive.id, data=part, size=len(part),
                                       uploaded_by="bench")
    return org_id, member.id, export.id


async def export_round(org: OrgId, export_id: uuid.UUID) -> tuple[float, int]:
    started = time.perf_counter()
    async with db.tenant_transaction(org):
        built = await fulfilment.build_export(export_id, actor=system_actor("bench"))
    seconds = time.perf_counter() - started
    assert built is not None
    assert built.bundle is not None
    return seconds, built.size


async def raw_round(app_url: str, org: OrgId, member_id: uuid.UUID) -> tuple[float, int]:
    conn = await connect(app_url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org))
            sink = io.BytesIO()
            await conn.copy_from_query(RAW_SQL, org, member_id, output=sink, format="csv",
                                       header=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=bundle.COMPRESS_LEVEL) as archive:
            archive.writestr("content_items.csv", sink.getvalue())
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return seconds, len(buffer.getvalue())


async def reset(admin_url: str, export_id: uuid.UUID) -> None:
    conn = await connect(admin_url)
    try:
        await conn.execute(
            "UPDATE privacy_exports SET status = 'collecting', bundle = NULL WHERE id = $1",
            export_id,
        )
    finally:
        await conn.close()


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    cfg = QUICK if args.quick else FULL
    with server_url() as server:
        console.print(await server_facts(server))
        console.print(f"at start: {machine_load()}")
        async with bench_database(server) as bench, orm(bench.urls, pool_size=4):
            org, member_id, export_id = await load(cfg.items)
            await export_round(org, export_id)  # warm-up of both, not counted
            await reset(bench.admin_url, export_id)
            await raw_round(bench.urls.app, org, member_id)
            built: list[float] = []
            raw: list[float] = []
            sizes = (0, 0)
            for n in range(cfg.rounds):
                order = ("export", "raw") if n % 2 == 0 else ("raw", "export")
                for variant in order:
                    if variant == "export":
                        await reset(bench.admin_url, export_id)
                        seconds, size = await export_round(org, export_id)
                        built.append(seconds)
                        sizes = (size, sizes[1])
                    else:
                        seconds, size = await raw_round(bench.urls.app, org, member_id)
                        raw.append(seconds)
                        sizes = (sizes[0], size)
                console.print(f"round {n + 1}: export {built[-1]:.3f} s, raw {raw[-1]:.3f} s")
            async with db.tenant_transaction(org):
                export = await PrivacyExport.get(id=export_id)
            content = next(f for f in export.files if f["name"] == "content_items.json")
    a, b = statistics.median(built), statistics.median(raw)
    console.print(f"export bundle: {sizes[0]:,} bytes zipped, {len(export.files)} files, "
                  f"content_items.json {content['size']:,} bytes")
    console.print(f"raw COPY zip:  {sizes[1]:,} bytes zipped")
    console.print(f"at end: {machine_load()}")
    console.print(f"export build for {cfg.items:,} items: median {a:.3f} s "
                  f"(min {min(built):.3f}); raw COPY into a zip: median {b:.3f} s "
                  f"(min {min(raw):.3f})")
    ratio = a / b
    if not meets(ratio, "<=", 3.0):
        console.print("the export takes longer than the goal allows (see above)")
    console.print(ratio_line("export_vs_raw", ratio, "<=", 3.0), markup=False)


if __name__ == "__main__":
    asyncio.run(main())
