"""Is a large organisation as quick to run as a small one?

One organisation per size (10k and 100k members; 1M more with ``--full``; ``--quick``: 200
and 1,000), each of the same shape: units = members / 50 (a root, a first level, leaves),
200 groups (every member in two), 300 rules, a choice for one member in ten, 20 content
items and 10 audit events per member, one session per member (one sign-in each), loaded
with COPY. One client per organisation then times, on the served app, a round of every
operation of every size at a time (what else the server does meanwhile falls on every
size alike):

  console overview, members list, member search, subtree filter for a leaf unit, units
  page, policies page, audit log, policy preview of a root lock, a cold decision
  (``/v1/members/{id}/settings`` of a member not asked before).

Every request must answer 2xx, or the run stops with an error.

Figures:

- ``scale_growth`` = the largest p50(size) / p50(the size below it), over the operations
  that answer a page and every step of sizes (10k -> 100k, and 100k -> 1M with
  ``--full``) (goal <= 1.5: a page costs what it shows, not what the organisation
  holds). The preview of a root lock is timed and its growth printed, but it is not one
  of them: it answers for every member in scope (counts, overridden
  choices, a breakdown per unit), so it reads them all and grows with the organisation
  by definition; its own figure holds it to that read:
- ``preview_vs_member_scan`` = p50 of the preview of a root lock at the largest size /
  p50 of one SELECT pass over that organisation's members with their unit, groups and
  choices (goal <= 2.0: the preview costs about one read of the members, not a
  resolution of each).

Run: ``python bench/scale.py [--quick | --full]``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    SECRET_KEY,
    AppServer,
    api_token,
    argument_parser,
    bench_database,
    connect,
    console,
    ms,
    percentile,
    progress,
    report,
    serve,
    server_url,
)
from itsdangerous import URLSafeSerializer

from app.runtime import orm
from policies.catalogue import BUILTIN, SettingType
from tenants import db
from tenants.actors import system_actor
from tenants.ids import OrgId
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind
from tenants.sessions import service as sessions

#: A smoke test: the same five-fold step, on organisations that load in seconds.
QUICK_SIZES = (200, 1_000)
SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)

#: Operations timed per size, in this order; the preview is a POST.
OPERATIONS = (
    "overview", "members list", "member search", "subtree filter", "units page",
    "policies page", "audit log", "preview root lock", "cold decision",
)

#: The member scan the preview is held to: what resolving everyone would have to read.
MEMBER_SCAN = """
SELECT m.id, m.unit_id,
       coalesce((SELECT array_agg(gm.group_id) FROM group_memberships gm
                  WHERE gm.tenant_id = m.tenant_id AND gm.member_id = m.id), '{}') AS groups,
       coalesce((SELECT jsonb_object_agg(c.setting, c.value) FROM member_choices c
                  WHERE c.tenant_id = m.tenant_id AND c.member_id = m.id), '{}'::jsonb) AS choices
  FROM members m WHERE m.tenant_id = $1
"""

#: Operations whose answer is about every member in scope: timed and their growth printed,
#: held to ``preview_vs_member_scan`` rather than to ``scale_growth``.
WHOLE_SCOPE = frozenset({"preview root lock"})

#: Past this many seconds on one operation at one size, stop (after one timed sample).
OPERATION_BUDGET_S = 30.0

BOOL_SETTINGS = [s.key for s in BUILTIN if s.type is SettingType.BOOL and s.member_choosable]


@dataclass(slots=True)
class Organisation:
    size: int
    id: OrgId
    root: uuid.UUID
    slug: str
    leaf: uuid.UUID = field(default_factory=uuid.uuid4)
    admin: uuid.UUID = field(default_factory=uuid.uuid4)
    members: list[uuid.UUID] = field(default_factory=list)
    search: str = ""
    cookie: str = ""
    csrf: str = ""
    token: str = ""


#: Members generated and copied at a time: a million members never sit in memory at once.
SLICE = 20_000

Rows = list[tuple[str, list[str], list[tuple[Any, ...]]]]

MEMBER_TABLES = {
    "members": ["id", "tenant_id", "email", "name", "unit_id", "roles", "status", "created_at", "updated_at"],
    "group_memberships": ["id", "tenant_id", "group_id", "member_id", "created_at", "updated_at"],
    "member_choices": ["id", "tenant_id", "member_id", "setting", "value", "created_at", "updated_at"],
    "content_items": ["id", "tenant_id", "member_id", "product_id", "external_id", "title", "kind", "size",
                      "legal_hold", "status", "transfer_count", "created_at", "updated_at"],
    "audit_events": ["tenant_id", "occurred_at", "actor", "actor_display", "action", "target_type",
                     "target_id", "after"],
    "sessions": ["id", "tenant_id", "member_id", "secret_hash", "auth_method", "last_seen_at", "expires_at",
                 "created_at", "updated_at"],
}


@dataclass(slots=True)
class Shape:
    """What every member's rows refer to: the units they are placed in, the groups, the
    product of their content."""

    places: list[uuid.UUID]
    groups: list[uuid.UUID]
    product: uuid.UUID


def structure_rows(org: Organisation, rng: random.Random) -> tuple[Rows, Shape]:
    """The organisation's units, groups, product and rules (see the module docstring)."""
    now = datetime.now(UTC)
    root_path = str(org.root)
    units = max(2, org.size // 50)
    first = max(1, int(units ** 0.5))
    unit_rows, leaves = [], []
    firsts = [uuid.uuid4() for _ in range(first)]
    for i, u in enumerate(firsts):
        unit_rows.append((u, org.id, org.root, f"{root_path}/{u}", 1, f"Division {i}", now, now))
    for i in range(units - 1 - first):
        parent = firsts[i % first]
        leaf = uuid.uuid4()
        leaves.append(leaf)
        unit_rows.append((leaf, org.id, parent, f"{root_path}/{parent}/{leaf}", 2, f"Team {i}", now, now))
    org.leaf = leaves[0] if leaves else firsts[0]
    groups = [uuid.uuid4() for _ in range(200)]
    group_rows = [(g, org.id, f"Group {i}", "", rng.randint(-5, 5), now, now) for i, g in enumerate(groups)]
    product = uuid.uuid4()
    product_rows = [(product, org.id, f"p{org.slug[-6:]}", "Product", "", now, now)]
    rule_rows = []
    targets = {(u[0], None) for u in unit_rows[: 150]} | {(None, g) for g in groups[:150]}
    for unit_id, group_id in sorted(targets, key=str)[:300]:
        rule_rows.append((uuid.uuid4(), org.id, unit_id, group_id, rng.choice(BOOL_SETTINGS),
                          json.dumps(rng.random() < 0.5), rng.random() < 0.2, "", now, now))
    tables: Rows = [
        ("units", ["id", "tenant_id", "parent_id", "path", "depth", "name", "created_at", "updated_at"], unit_rows),
        ("groups", ["id", "tenant_id", "name", "description", "priority", "created_at", "updated_at"], group_rows),
        ("products", ["id", "tenant_id", "key", "name", "description", "created_at", "updated_at"], product_rows),
        ("policy_rules", ["id", "tenant_id", "unit_id", "group_id", "setting", "value", "enforced", "reason",
                          "created_at", "updated_at"], rule_rows),
    ]
    return tables, Shape(leaves or firsts, groups, product)


def member_rows(org: Organisation, shape: Shape, rng: random.Random, first: int, stop: int) -> Rows:
    """Members ``first`` to ``stop - 1`` with their memberships, choices, content, audit
    events and sessions."""
    now = datetime.now(UTC)
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in MEMBER_TABLES}
    places = shape.places
    for i in range(first, stop):
        member = org.admin if i == 0 else uuid.uuid4()
        org.members.append(member)
        name = f"Person {rng.getrandbits(40):010x}"
        if i == org.size // 2:
            org.search = name[-7:]  # seven hex characters of one member's name
        roles = '["admin"]' if i == 0 else '["member"]'
        rows["members"].append((member, org.id, f"p{i}@{org.slug}.example", name,
                                org.root if i == 0 else places[i % len(places)], roles, "active", now, now))
        for g in rng.sample(shape.groups, 2):
            rows["group_memberships"].append((uuid.uuid4(), org.id, g, member, now, now))
        if i % 10 == 0:
            rows["member_choices"].append((uuid.uuid4(), org.id, member, rng.choice(BOOL_SETTINGS),
                                           json.dumps(rng.random() < 0.5), now, now))
        for c in range(20):
            rows["content_items"].append((uuid.uuid4(), org.id, member, shape.product, f"{i}-{c}", "item",
                                          "organisation" if c % 4 else "personal", 1000 + c, False, "active",
                                          0, now, now))
        for e in range(10):
            action = "session.signed_in" if e == 0 else "member.updated"
            after = json.dumps({"break_glass": i % 5000 == 0} if e == 0 else {"name": name})
            rows["audit_events"].append((org.id, now, "system:bench", "bench", action, "member",
                                         str(member), after))
        rows["sessions"].append((uuid.uuid4(), org.id, member, uuid.uuid4().hex * 2, "oidc", now,
                                 now + timedelta(hours=rng.choice((-2, 2, 20))), now, now))
    return [(table, MEMBER_TABLES[table], rows[table]) for table in MEMBER_TABLES]


async def load(conn: Any, org: Organisation, rng: random.Random) -> None:
    """COPY the organisation's rows, ``SLICE`` members at a time, with a progress bar."""
    tables, shape = structure_rows(org, rng)
    for table, columns, rows in tables:
        await conn.copy_records_to_table(table, records=rows, columns=columns)
    with progress() as bar:
        task = bar.add_task(f"{org.size:,} members (COPY)", total=org.size)
        for first in range(0, org.size, SLICE):
            stop = min(org.size, first + SLICE)
            for table, columns, rows in member_rows(org, shape, rng, first, stop):
                await conn.copy_records_to_table(table, records=rows, columns=columns)
            bar.advance(task, stop - first)


async def build(bench: Any, size: int, rng: random.Random) -> Organisation:
    """One organisation of ``size`` members: made by the service, filled with COPY."""
    async with orm(bench.urls, pool_size=2):
        slug = f"scale-{size}-{uuid.uuid4().hex[:6]}"
        made = await organisations.create_organisation(
            slug=slug, name=slug, kind=OrganisationKind.EMPLOYER, domains=[f"{slug}.example"],
            actor=system_actor("bench"))
        async with db.tenant_transaction(OrgId(made.id)):
            root = (await db.fetch_one("SELECT id FROM units WHERE parent_id IS NULL"))["id"]  # type: ignore[index]
    org = Organisation(size, OrgId(made.id), root, slug)
    conn = await connect(bench.admin_url)
    try:
        await load(conn, org, rng)
        # Statistics and the GIN pending lists, as autovacuum would leave them; then the
        # load's dirty pages written out, so that flushing them (gigabytes after a million
        # members) does not fall in the timings of the sizes timed first.
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    async with orm(bench.urls, pool_size=2), db.tenant_transaction(org.id):
        from tenants.members.models import Member
        from tenants.sessions.models import AuthMethod

        admin = await Member.get(id=org.admin)
        token = await sessions.create_session(admin, AuthMethod.OIDC, actor=system_actor("bench"))
    signer = URLSafeSerializer(SECRET_KEY, salt="tenantry.cookies")
    org.cookie = signer.dumps({"s": {org.id.hex: [token.secret, slug, slug]}, "c": org.id.hex})
    org.csrf = sessions.csrf_token(SECRET_KEY, token)
    org.token = await api_token(bench.urls, org.id, scopes=("settings:read",))
    return org


@dataclass(slots=True)
class Timings:
    samples: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def add(self, op: str, size: int, seconds: float) -> None:
        self.samples.setdefault((op, size), []).append(seconds)

    def p(self, op: str, size: int, q: float) -> float:
        return percentile(self.samples.get((op, size), []), q)


def requests_of(org: Organisation) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """The request of each operation but the cold decision (a new member each time)."""
    root_lock = {"csrf": org.csrf, "target": f"unit:{org.root}", "setting": BOOL_SETTINGS[0],
                 "value": "on", "enforced": "on", "reason": "bench"}
    return {
        "overview": ("GET", "/console", {}),
        "members list": ("GET", "/console/members", {}),
        "member search": ("GET", "/console/members", {"params": {"q": org.search}}),
        "subtree filter": ("GET", "/console/members", {"params": {"unit": str(org.leaf)}}),
        "units page": ("GET", "/console/units", {}),
        "policies page": ("GET", "/console/policies", {}),
        "audit log": ("GET", "/console/audit", {}),
        # The page a browser without scripts gets: the whole preview in the request (with
        # htmx a scope this large runs as a job the console polls, which times nothing).
        "preview root lock": ("POST", "/console/policies/preview", {"data": root_lock}),
    }


async def time_operations(base: str, orgs: list[Organisation], rounds: int, timings: Timings) -> None:
    """Each operation of each organisation ``rounds`` times after one warm-up round, a
    round at a time over every size in turn, so that what else the server does meanwhile
    (autovacuum, a checkpoint) falls on every size alike rather than on the one being
    timed; RuntimeError on a non-2xx."""
    import httpx

    clients = {org.size: httpx.AsyncClient(base_url=base, cookies={"tenantry_session": org.cookie},
                                           timeout=600) for org in orgs}
    asked = {org.size: iter(org.members[1:]) for org in orgs}
    requests = {org.size: requests_of(org) for org in orgs}
    spent: dict[tuple[str, int], float] = {}
    try:
        with progress() as bar:
            task = bar.add_task("timing (rounds over every size)", total=(rounds + 1) * len(orgs))
            for attempt in range(rounds + 1):
                for org in orgs:
                    for op in OPERATIONS:
                        if attempt > 1 and spent.get((op, org.size), 0.0) > OPERATION_BUDGET_S:
                            continue  # a slow operation (minutes a request): one sample shows it
                        if op == "cold decision":
                            method, path, kw = "GET", f"/v1/members/{next(asked[org.size])}/settings", {
                                "headers": {"Authorization": f"Bearer {org.token}"}}
                        else:
                            method, path, kw = requests[org.size][op]
                        started = time.perf_counter()
                        response = await clients[org.size].request(method, path, **kw)
                        elapsed = time.perf_counter() - started
                        if not 200 <= response.status_code < 300:
                            raise RuntimeError(f"{op} at {org.size}: {method} {path} answered "
                                               f"{response.status_code}: {response.text[:300]}")
                        if not response.content:
                            raise RuntimeError(f"{op} at {org.size}: {method} {path} answered nothing")
                        if attempt:
                            timings.add(op, org.size, elapsed)
                            spent[op, org.size] = spent.get((op, org.size), 0.0) + elapsed
                    bar.advance(task)
    finally:
        for client in clients.values():
            await client.aclose()


async def time_member_scan(bench: Any, org: Organisation, rounds: int) -> float:
    """p50 of MEMBER_SCAN as the runtime role in the organisation's transaction."""
    conn = await connect(bench.urls.app)
    seconds = []
    try:
        for attempt in range(rounds + 1):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
                started = time.perf_counter()
                rows = await conn.fetch(MEMBER_SCAN, org.id)
                if attempt:
                    seconds.append(time.perf_counter() - started)
            if len(rows) != org.size:
                raise RuntimeError(f"the member scan read {len(rows)} members of {org.size}")
    finally:
        await conn.close()
    return percentile(seconds, 50)


async def main(args: Any) -> None:
    started = time.perf_counter()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES if args.full else SIZES
    rounds = 2 if args.quick else 9
    rng = random.Random(args.seed)
    timings = Timings()
    with server_url() as server, tempfile.TemporaryDirectory(prefix="tenantry-scale-") as work:
        async with bench_database(server) as bench:
            # Started first: its start-up (seconds of imports) overlaps the loading, and it
            # answers nothing until the organisations are built.
            app = AppServer(Path(__file__), Path(work), bench.urls, config={})
            app.start()
            try:
                orgs = []
                for size in sizes:
                    t = time.perf_counter()
                    orgs.append(await build(bench, size, rng))
                    console.print(f"organisation of {size:,} members built in {time.perf_counter() - t:.1f} s")
                await app.wait_ready()
                await time_operations(app.url, orgs, rounds, timings)
            finally:
                app.stop()
            scan = await time_member_scan(bench, orgs[-1], rounds)
    header = f"{'operation':<20}" + "".join(f"{f'{s:,} p50':>14}{'p95':>11}" for s in sizes)
    console.print(header)
    for op in OPERATIONS:
        cells = "".join(f"{ms(timings.p(op, s, 50)):>14}{ms(timings.p(op, s, 95)):>11}" for s in sizes)
        console.print(f"{op:<20}{cells}")
    steps = list(itertools.pairwise(sizes))
    paged = {(op, small, large): timings.p(op, large, 50) / timings.p(op, small, 50)
             for small, large in steps for op in OPERATIONS if op not in WHOLE_SCOPE}
    for small, large in steps:
        op, _, _ = max((k for k in paged if k[1] == small), key=lambda k: paged[k])
        console.print(f"largest growth {small:,} -> {large:,} of a page: {op} "
                      f"x{paged[op, small, large]:.2f}")
        for whole in sorted(WHOLE_SCOPE):
            grown = timings.p(whole, large, 50) / timings.p(whole, small, 50)
            console.print(f"growth of {whole} {small:,} -> {large:,} (reads every member in "
                          f"scope, x{large / small:.0f} members): x{grown:.2f}")
    large = sizes[-1]
    console.print(f"member scan p50 at {large:,}: {ms(scan)}")
    preview = timings.p("preview root lock", large, 50)
    report([("scale_growth", max(paged.values()), "<=", 1.5),
            ("preview_vs_member_scan", preview / scan, "<=", 2.0)],
           started=started, quick=args.quick)


if __name__ == "__main__":
    parser = argument_parser(__doc__.splitlines()[0], serves=True)
    parser.add_argument("--full", action="store_true", help="also 1,000,000 members")
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve, embedded_worker=False)
        sys.exit(0)
    asyncio.run(main(arguments))
