"""What erasing a member costs through the erasure path against raw SQL on the same rows,
and whether an erasure slows down verifying the audit chain.

Two figures, each a ratio of two variants measured in this run:

- ``erasure_vs_raw``: median seconds of the erasure path (``erase_for_request`` of an open
  erasure request: the member's 100,000 personal content items deleted with products told
  which went, then ``erase_member``: every step of the personal-data map, the member's
  audit key deleted, ``member.erased`` published, evidence and audit events, committed)
  divided by median seconds of raw SQL doing the same to an identical member of another
  organisation in one transaction as the superuser: the same items deleted, the member row
  overwritten, their sessions, choices and SCIM row deleted and the personal fields of
  their 10,000 audit events overwritten in place (which the service may not do: it would
  break the chain; hence the other organisation). Goal <= 3.0.
- ``verify_after_erasure``: seconds of ``tenantry audit verify`` (``audit.verify``) on the
  erasing organisation's chain right after one of its members was erased divided by the
  same right before that erasure (each the fastest of three walks, medians over the
  rounds; pairs close in time share the machine's load): crypto-shredding deletes keys,
  not events, so the chain walks as before. Goal <= 1.1.

Data per member: 100,000 personal content items (``--quick``: 5,000) in one ``INSERT …
SELECT generate_series`` and 10,000 audited updates of the member (``--quick``: 500),
recorded with sealed personal fields in one statement, then sealed into the chain.

Run: ``python bench/erasure.py [--quick]`` (``BENCH_DATABASE_URL`` = a superuser URL of a
server of your own; otherwise the embedded server in a temporary folder).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass

from _common import (
    bench_database,
    connect,
    console,
    machine_load,
    parse_args,
    report,
    server_facts,
    server_url,
)

from app.runtime import orm
from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.audit.sealer import seal_all
from tenants.content.models import ContentKind
from tenants.ids import OrgId
from tenants.members import service as members
from tenants.members.lifecycle import MemberStatus
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind
from tenants.products.models import Product, ProductAccount
from tenants.requests import fulfilment, service
from tenants.requests.models import RequestKind, RequestSource
from tenants.scim.service import record_many
from tenants.units.models import Unit


@dataclass(frozen=True, slots=True)
class Config:
    items: int
    events: int
    rounds: int


QUICK = Config(items=5_000, events=500, rounds=1)
FULL = Config(items=100_000, events=10_000, rounds=3)

ITEMS_SQL = """
INSERT INTO content_items (id, tenant_id, member_id, product_id, external_id, title, kind,
                           size, item_created_at, legal_hold, export_url, status,
                           transfer_count, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, $3, $4 || '-' || g, 'Document number ' || g || '.docx',
       'personal', 1000 + g * 7, now(), false, NULL, 'active', 0, now(), now()
  FROM generate_series(1, $5) AS g
"""

#: The raw baseline: the same rows deleted and overwritten, nothing else.
RAW_SQL = [
    "DELETE FROM content_items WHERE tenant_id = $1 AND member_id = $2 AND kind = 'personal' "
    "AND NOT legal_hold",
    "UPDATE members SET name = 'erased member', email = 'erased-' || id::text || '@invalid', "
    "idp_subject = NULL, external_id = NULL, status = 'purged' WHERE tenant_id = $1 AND id = $2",
    "DELETE FROM sessions WHERE tenant_id = $1 AND member_id = $2",
    "DELETE FROM member_choices WHERE tenant_id = $1 AND member_id = $2",
    "DELETE FROM scim_users WHERE tenant_id = $1 AND id = $2",
    "UPDATE audit_events SET actor_display = 'erased member', before = NULL, after = NULL "
    "WHERE tenant_id = $1 AND target_type = 'member' AND target_id = $2::uuid::text",
]


def admin() -> Actor:
    return Actor(ActorKind.API_TOKEN, "bench-token", "bench token", request_id=uuid.uuid4().hex,
                 client_addr="127.0.0.1")


async def make_org() -> tuple[OrgId, uuid.UUID, uuid.UUID]:
    slug = f"bench-{uuid.uuid4().hex[:10]}"
    org = await organisations.create_organisation(
        slug=slug, name="Bench Corporation", kind=OrganisationKind.EMPLOYER,
        domains=[f"{slug}.example"], actor=admin(),
    )
    org_id = OrgId(org.id)
    async with db.tenant_transaction(org_id):
        root = await Unit.get(parent_id=None)
        drive = await Product.create(tenant_id=org_id, key="drive", name="Drive")
    return org_id, root.id, drive.id


async def load_member(org: OrgId, unit_id: uuid.UUID, product_id: uuid.UUID, cfg: Config) -> uuid.UUID:
    """A member with ``cfg.items`` personal items and ``cfg.events`` audited updates."""
    tag = uuid.uuid4().hex[:8]
    async with db.tenant_transaction(org):
        member = await members.create_member(
            members.NewMember(email=f"mia-{tag}@bench.example", name=f"Mia {tag}",
                              unit_id=unit_id, status=MemberStatus.ACTIVE,
                              external_id=f"ext-{tag}"),
            actor=admin(),
        )
        await ProductAccount.create(tenant_id=org, member_id=member.id, product_id=product_id)
        await db.connection().execute_query(
            ITEMS_SQL, [org, member.id, product_id, f"item-{tag}", cfg.items]
        )
        person = Actor(ActorKind.MEMBER, str(member.id), f"Mia {tag} <mia-{tag}@bench.example>",
                       client_addr="198.51.100.7")
        await record_many(
            "member.updated", "member",
            [(member.id, {"name": f"Mia {tag} {n}"}, {"name": f"Mia {tag} {n + 1}"})
             for n in range(cfg.events)],
            actor=person, plain=True,
        )
    await seal_all(wait=True)
    return member.id


async def erasure_round(org: OrgId, member_id: uuid.UUID) -> float:
    async with db.tenant_transaction(org):
        request, _ = await service.submit_request(
            member_id, RequestKind.ERASURE, "Erase me.", actor=admin(), source=RequestSource.API,
        )
    started = time.perf_counter()
    async with db.tenant_transaction(org):
        run = await fulfilment.erase_for_request(request.id, [ContentKind.PERSONAL],
                                                 actor=admin())
    seconds = time.perf_counter() - started
    assert run["member_erasure"]["audit_key_deleted"], run
    return seconds


async def raw_round(admin_url: str, org: OrgId, member_id: uuid.UUID) -> float:
    conn = await connect(admin_url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            for sql in RAW_SQL:
                await conn.execute(sql, org, member_id)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def verify_seconds(org: OrgId, times: int = 3) -> tuple[float, int]:
    """The fastest of ``times`` walks (the least disturbed by a shared machine)."""
    runs: list[float] = []
    checked = 0
    for _ in range(times):
        started = time.perf_counter()
        async with db.tenant_transaction(org):
            result = await audit.verify()
        runs.append(time.perf_counter() - started)
        assert result.ok, result.broken
        checked = result.checked
    return min(runs), checked


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    cfg = QUICK if args.quick else FULL
    began = time.perf_counter()
    with server_url() as server:
        console.print(await server_facts(server))
        console.print(f"at start: {machine_load()}")
        async with bench_database(server) as bench, orm(bench.urls, pool_size=4):
            erasing, erasing_unit, erasing_product = await make_org()
            raw_org, raw_unit, raw_product = await make_org()
            loaded = time.perf_counter()
            pairs = []
            for _ in range(cfg.rounds):
                pairs.append((await load_member(erasing, erasing_unit, erasing_product, cfg),
                              await load_member(raw_org, raw_unit, raw_product, cfg)))
            console.print(f"{2 * cfg.rounds} members with {cfg.items:,} items and "
                          f"{cfg.events:,} audit events each loaded in "
                          f"{time.perf_counter() - loaded:.1f} s")
            erased: list[float] = []
            raw: list[float] = []
            before: list[float] = []
            after: list[float] = []
            for n, (mine, theirs) in enumerate(pairs):
                order = ("erase", "raw") if n % 2 == 0 else ("raw", "erase")
                for variant in order:
                    if variant == "erase":
                        seconds, checked_before = await verify_seconds(erasing)
                        before.append(seconds)
                        erased.append(await erasure_round(erasing, mine))
                        await seal_all(wait=True)
                        seconds, checked_after = await verify_seconds(erasing)
                        after.append(seconds)
                    else:
                        raw.append(await raw_round(bench.admin_url, raw_org, theirs))
                console.print(f"round {n + 1}: erasure path {erased[-1]:.3f} s, "
                              f"raw SQL {raw[-1]:.3f} s; verify {before[-1]:.3f} s before, "
                              f"{after[-1]:.3f} s after")
    verify_before, verify_after = statistics.median(before), statistics.median(after)
    a, b = statistics.median(erased), statistics.median(raw)
    console.print(f"erasure of a member with {cfg.items:,} items and {cfg.events:,} audit "
                  f"events: median {a:.3f} s; raw SQL on the same rows: median {b:.3f} s")
    console.print(f"audit verify: {checked_before:,} events {verify_before:.3f} s before, "
                  f"{checked_after:,} events {verify_after:.3f} s after the erasures")
    report(
        [("erasure_vs_raw", a / b, "<=", 3.0),
         ("verify_after_erasure", verify_after / verify_before, "<=", 1.1)],
        started=began, quick=args.quick,
    )


if __name__ == "__main__":
    asyncio.run(main())
