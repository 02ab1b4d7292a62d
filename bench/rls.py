"""What row-level security costs the member reads, on a million members.

Figure ``rls_overhead`` = p95 latency of the member list query run as the runtime role
(``tenantry_app``) relying on RLS alone, divided by p95 of the same query run as a role
with BYPASSRLS that filters ``tenant_id = $1`` itself. Goal <= 1.1. The member-by-id figure
is printed too (information). Both run inside the same kind of transaction
(``set_config('app.tenant_id', org, true)``, query, commit), with the same random
organisations and members, interleaved, after a warm-up; only the query is timed.

EXPLAIN (as the runtime role, tenant set) shows whether the policy's tenant predicate
reaches the index (``Index Cond``) or is applied row by row (``Filter``).

Run: ``python bench/rls.py [--quick]`` (``BENCH_DATABASE_URL`` = a superuser URL to use a
server of your own; otherwise the embedded server in a temporary folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from _common import (
    BenchDatabase,
    bench_database,
    connect,
    console,
    machine_load,
    ms,
    parse_args,
    percentile,
    progress,
    report,
    server_facts,
    server_url,
)
from tortoise.expressions import Q

from app import database
from app.runtime import orm
from tenants.actors import system_actor
from tenants.members.models import Member
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind

BYPASS_ROLE = "tenantry_bench_bypass"
PAGE = 50  # the API's default ?limit; the service asks for one more row to know if a next page exists


@dataclass(frozen=True, slots=True)
class Config:
    orgs: int
    members_per_org: int
    iterations: int
    warmup: int


#: A smoke test: every query, plan and figure of the full run on a smaller table.
QUICK = Config(orgs=50, members_per_org=400, iterations=500, warmup=100)
FULL = Config(orgs=1_000, members_per_org=1_000, iterations=6_000, warmup=1_000)


@dataclass(frozen=True, slots=True)
class Queries:
    """The SQL tortoise generates for the service's reads, with and without a tenant filter."""

    list_rls: str
    list_bypass: str
    get_rls: str
    get_bypass: str
    #: A later page: ``tenants/pagination.py``'s keyset filter after (email, id).
    list_after_rls: str


def tortoise_queries() -> Queries:
    """Ask tortoise for the exact SQL of ``list_members`` (first page, sort=email) and of
    ``get_member`` (``get_by_id``), so the benchmark follows the model as it changes.
    The bypass variants add ``tenant_id = $1`` and shift the other parameters."""
    some = uuid.uuid4()
    list_rls = Member.all().order_by("email", "id").limit(PAGE + 1).sql()
    list_bypass = Member.filter(tenant_id=some).order_by("email", "id").limit(PAGE + 1).sql()
    get_rls = Member.filter(id=some).limit(1).sql()
    get_bypass = Member.filter(tenant_id=some, id=some).limit(1).sql()
    after = Q(email__gt="x") | Q(email="x", id__gt=some)  # as paginate() builds it
    list_after = Member.filter(after).order_by("email", "id").limit(PAGE + 1).sql()
    return Queries(list_rls, list_bypass, get_rls, get_bypass, list_after)


# --- data ------------------------------------------------------------------------------


async def create_orgs(count: int) -> list[uuid.UUID]:
    """Organisations through the product's own service (row, audit chain, root unit),
    four at a time: this is seconds even for 1,000 and keeps up with schema changes."""
    actor = system_actor("bench")
    made: list[uuid.UUID] = []
    slugs = iter(range(count))

    async def worker(bar_advance: Any) -> None:
        for i in slugs:
            slug = f"bench-{i:05d}-{uuid.uuid4().hex[:6]}"
            org = await organisations.create_organisation(
                slug=slug, name=f"Bench {i}", kind=OrganisationKind.EMPLOYER,
                domains=[f"{slug}.example"], actor=actor,
            )
            made.append(org.id)
            bar_advance()

    with progress() as bar:
        task = bar.add_task("organisations", total=count)
        await asyncio.gather(*(worker(lambda: bar.advance(task)) for _ in range(4)))
    return sorted(made)


async def load_members(bench: BenchDatabase, per_org: int) -> None:
    """Members with ``INSERT … SELECT generate_series`` as the superuser, several
    organisations per statement; emails are random so index order is not heap order (as
    in real life). Foreign-key triggers are skipped (session_replication_role = replica):
    the rows point at the root units by construction."""
    conn = await connect(bench.admin_url)
    try:
        orgs = [r["tenant_id"] for r in await conn.fetch(
            "SELECT tenant_id FROM units WHERE parent_id IS NULL ORDER BY tenant_id")]
        step = max(1, 20_000 // per_org)
        await conn.execute("SET session_replication_role = replica")
        with progress() as bar:
            task = bar.add_task("members", total=len(orgs) * per_org)
            for start in range(0, len(orgs), step):
                batch = orgs[start:start + step]
                await conn.execute(
                    """
                    INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status,
                                         status_changed_at, created_at, updated_at)
                    SELECT gen_random_uuid(), u.tenant_id,
                           substr(md5(random()::text), 1, 10) || '.' || g || '@example.org',
                           'Member ' || g, u.id, '["member"]'::jsonb, 'active', now(), now(), now()
                      FROM units u CROSS JOIN generate_series(1, $2::int) AS g
                     WHERE u.parent_id IS NULL AND u.tenant_id = ANY($1::uuid[])
                    """,
                    batch, per_org,
                )
                bar.advance(task, len(batch) * per_org)
        await conn.execute("RESET session_replication_role")
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) members")
        console.print(f"VACUUM ANALYZE members: {time.perf_counter() - started:.1f} s; "
                      f"size {await conn.fetchval(SIZE_SQL)}")
    finally:
        await conn.close()


SIZE_SQL = "SELECT pg_size_pretty(pg_total_relation_size('members'))"


async def sample_members(bench: BenchDatabase, wanted: int, rng: random.Random) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant_id, id) of random members, in a random but seeded order."""
    conn = await connect(bench.admin_url)
    try:
        total = await conn.fetchval("SELECT count(*) FROM members")
        percent = min(100.0, 100.0 * wanted * 2 / max(total, 1))
        rows = await conn.fetch(
            f"SELECT tenant_id, id FROM members TABLESAMPLE BERNOULLI ({percent:.6f}) "
            f"REPEATABLE ({rng.randrange(1 << 30)}) ORDER BY tenant_id, id"
        )
    finally:
        await conn.close()
    picked = [(r["tenant_id"], r["id"]) for r in rows]
    rng.shuffle(picked)
    return picked[:wanted]


async def create_bypass_role(bench: BenchDatabase) -> str:
    """A login role with BYPASSRLS and the runtime grants: the baseline that filters by
    tenant itself. Dropped again at the end (see ``drop_bypass_role``)."""
    conn = await connect(bench.server_admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", BYPASS_ROLE):
            with contextlib.suppress(asyncpg.DuplicateObjectError):  # another run, same moment
                await conn.execute(f"CREATE ROLE {BYPASS_ROLE} LOGIN BYPASSRLS NOSUPERUSER")
        await conn.execute(f"GRANT {database.RUNTIME_ROLE} TO {BYPASS_ROLE}")
    finally:
        await conn.close()
    return str(database.with_user(bench.admin_url, BYPASS_ROLE))


async def drop_bypass_role(server_admin_url: str) -> None:
    """A password-less BYPASSRLS login must not outlive the run; another run still using
    it would only lose new connections, so a failure here is reported, not raised."""
    conn = await connect(server_admin_url)
    try:
        await conn.execute(f"DROP ROLE IF EXISTS {BYPASS_ROLE}")
    except asyncpg.PostgresError as exc:
        console.print(f"note: could not drop role {BYPASS_ROLE}: {exc}")
    finally:
        await conn.close()


# --- measuring -------------------------------------------------------------------------


@dataclass(slots=True)
class Timings:
    query: list[float] = field(default_factory=list)
    transaction: list[float] = field(default_factory=list)

    def line(self, label: str) -> str:
        return (f"{label:<30} query p50 {ms(percentile(self.query, 50)):>9}  p95 "
                f"{ms(percentile(self.query, 95)):>9}  p99 {ms(percentile(self.query, 99)):>9}"
                f"   whole transaction p95 {ms(percentile(self.transaction, 95)):>9}")


async def timed(conn: asyncpg.Connection, org: uuid.UUID, sql: str, args: Sequence[Any],
                into: Timings | None) -> int:
    """One request's worth: BEGIN, set the tenant (transaction-local), the query, COMMIT.
    Only the query is the figure; the whole transaction is kept for information."""
    began = time.perf_counter()
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org))
        started = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        elapsed = time.perf_counter() - started
    if into is not None:
        into.query.append(elapsed)
        into.transaction.append(time.perf_counter() - began)
    return len(rows)


@dataclass(slots=True)
class Results:
    list_rls: Timings = field(default_factory=Timings)
    list_bypass: Timings = field(default_factory=Timings)
    get_rls: Timings = field(default_factory=Timings)
    get_bypass: Timings = field(default_factory=Timings)


async def one_iteration(i: int, rls: asyncpg.Connection, bypass: asyncpg.Connection, q: Queries,
                        org: uuid.UUID, member: tuple[uuid.UUID, uuid.UUID],
                        res: Results | None) -> None:
    """The four measurements of one iteration; which variant goes first alternates, so
    the second one's warmer cache favours neither on average."""
    tenant, member_id = member
    steps = [
        ((rls, q.list_rls, (PAGE + 1,), org, "list_rls"),
         (bypass, q.list_bypass, (org, PAGE + 1), org, "list_bypass")),
        ((rls, q.get_rls, (member_id, 1), tenant, "get_rls"),
         (bypass, q.get_bypass, (tenant, member_id, 1), tenant, "get_bypass")),
    ]
    for pair in steps:
        for conn, sql, args, tenant_of, name in (pair if i % 2 == 0 else pair[::-1]):
            rows = await timed(conn, tenant_of, sql, args, getattr(res, name) if res else None)
            if name.startswith("get") and rows != 1:
                raise AssertionError(f"{name}: member {member_id} not found ({rows} rows)")
            if name.startswith("list") and rows == 0:
                raise AssertionError(f"{name}: no members listed for {tenant_of}")


async def measure(cfg: Config, rls: asyncpg.Connection, bypass: asyncpg.Connection, q: Queries,
                  orgs: list[uuid.UUID], members: list[tuple[uuid.UUID, uuid.UUID]],
                  rng: random.Random) -> Results:
    """Warm-up (every organisation's first page once, both roles), then the measured
    iterations: random organisation for the list, random member for the get."""
    res = Results()
    with progress() as bar:
        warm = bar.add_task("warm-up", total=len(orgs) + cfg.warmup)
        for i, org in enumerate(orgs):
            await one_iteration(i, rls, bypass, q, org, members[i % len(members)], None)
            bar.advance(warm)
        for i in range(cfg.warmup):
            await one_iteration(i, rls, bypass, q, rng.choice(orgs), rng.choice(members), None)
            bar.advance(warm)
        task = bar.add_task("measure", total=cfg.iterations)
        for i in range(cfg.iterations):
            await one_iteration(i, rls, bypass, q, rng.choice(orgs), members[i % len(members)], res)
            bar.advance(task)
    return res


async def plan_cache(conn: asyncpg.Connection, sqls: dict[str, str]) -> str:
    """How PostgreSQL planned each prepared statement on this connection: a statement that
    keeps getting custom plans is planned again on every execution (pg_prepared_statements)."""
    rows = await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
    parts = []
    for label, sql in sqls.items():
        row = next((r for r in rows if r["statement"].strip() == sql.strip()), None)
        if row is not None:
            parts.append(f"{label}: {row['generic_plans']} generic / {row['custom_plans']} custom plans")
    return "; ".join(parts) or "no prepared statements found"


# --- EXPLAIN ---------------------------------------------------------------------------


async def explain(conn: asyncpg.Connection, org: uuid.UUID, sql: str, args: Sequence[Any]) -> list[str]:
    """EXPLAIN ANALYZE in the same kind of transaction (tenant set, rolled back)."""
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org))
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}", *args)
    finally:
        await tr.rollback()
    return [r[0] for r in rows]


def tenant_in_index_cond(plan: list[str]) -> bool:
    """Whether some ``Index Cond`` carries the tenant predicate (not only a ``Filter``)."""
    return any("Index Cond" in line and "tenant_id" in line for line in plan)


def tenant_in_filter(plan: list[str]) -> bool:
    return any(line.strip().startswith("Filter:") and "tenant_id" in line for line in plan)


async def show_plans(rls: asyncpg.Connection, bypass: asyncpg.Connection, q: Queries,
                     org: uuid.UUID, member: tuple[uuid.UUID, uuid.UUID]) -> bool:
    """Print the plans; True when the tenant predicate is an index condition in both
    runtime-role plans."""
    tenant, member_id = member
    plans = {
        "list, runtime role (RLS)": await explain(rls, org, q.list_rls, (PAGE + 1,)),
        "get, runtime role (RLS)": await explain(rls, tenant, q.get_rls, (member_id, 1)),
        "list, bypass role (explicit filter)": await explain(bypass, org, q.list_bypass, (org, PAGE + 1)),
        "get, bypass role (explicit filter)": await explain(bypass, tenant, q.get_bypass, (tenant, member_id, 1)),
    }
    verdicts: list[bool] = []
    for label, plan in plans.items():
        console.print(f"[bold]EXPLAIN {label}[/bold]")
        for line in plan:
            console.print("    " + line, markup=False)
        in_index = tenant_in_index_cond(plan)
        console.print(f"  tenant predicate in Index Cond: {'yes' if in_index else 'no'}"
                      f"{' (also in a Filter)' if tenant_in_filter(plan) else ''}")
        if "RLS" in label:
            verdicts.append(in_index)
    return all(verdicts)


def plan_figures(plan: list[str]) -> tuple[int, float]:
    """Buffers touched (the top node's) and execution time (ms) of an EXPLAIN ANALYZE."""
    buffers = next((int(line.split("hit=")[1].split()[0]) for line in plan if "shared hit=" in line), 0)
    millis = next((float(line.split(":")[1].split()[0]) for line in plan if "Execution Time" in line), 0.0)
    return buffers, millis


async def show_middle_page(bench: BenchDatabase, rls: asyncpg.Connection, q: Queries,
                           org: uuid.UUID) -> None:
    """Information, not a figure: a page half-way down the list against the first page.

    The keyset filter ``email > $1 OR (email = $1 AND id > $2)`` is not one index range,
    so the planner either reads the organisation's rows from the start and filters, or
    fetches every row after the cursor and sorts them: the cost grows with the
    organisation's size instead of staying at one page's worth.
    """
    admin = await connect(bench.admin_url)
    try:
        total = await admin.fetchval("SELECT count(*) FROM members WHERE tenant_id = $1", org)
        row = await admin.fetchrow(
            "SELECT email, id FROM members WHERE tenant_id = $1 ORDER BY email, id OFFSET $2 LIMIT 1",
            org, total // 2,
        )
    finally:
        await admin.close()
    assert row is not None
    first = await explain(rls, org, q.list_rls, (PAGE + 1,))
    middle = await explain(rls, org, q.list_after_rls, (row["email"], row["email"], row["id"], PAGE + 1))
    console.print(f"[bold]EXPLAIN list, page after row {total // 2} of {total} (RLS)[/bold]")
    for line in middle:
        console.print("    " + line, markup=False)
    (b1, t1), (b2, t2) = plan_figures(first), plan_figures(middle)
    console.print(f"  info: buffers touched / execution time: first page {b1} / {t1:.3f} ms, "
                  f"middle page {b2} / {t2:.3f} ms")


# --- main ------------------------------------------------------------------------------


async def main_async(quick: bool, seed: int) -> tuple[list[tuple[str, float, str, float]], bool]:
    cfg = QUICK if quick else FULL
    rng = random.Random(seed)
    with server_url() as server:
        console.print(await server_facts(server))
        console.print(f"at start: {machine_load()}")
        async with bench_database(server) as bench:
            try:
                async with orm(bench.urls, pool_size=4):
                    q = tortoise_queries()
                    started = time.perf_counter()
                    orgs = await create_orgs(cfg.orgs)
                    await load_members(bench, cfg.members_per_org)
                    console.print(f"loaded {cfg.orgs * cfg.members_per_org:,} members in "
                                  f"{cfg.orgs:,} organisations in {time.perf_counter() - started:.1f} s")
                members = await sample_members(bench, cfg.iterations, rng)
                bypass_url = await create_bypass_role(bench)
                rls = await connect(bench.urls.app)
                bypass = await connect(bypass_url)
                try:
                    console.rule("EXPLAIN")
                    index_cond = await show_plans(rls, bypass, q, orgs[len(orgs) // 2], members[0])
                    await show_middle_page(bench, rls, q, orgs[len(orgs) // 2])
                    console.rule("latency")
                    console.print(f"list query: {q.list_rls}", markup=False)
                    res = await measure(cfg, rls, bypass, q, orgs, members, rng)
                    console.print("plan cache, runtime role: "
                                  + await plan_cache(rls, {"list": q.list_rls, "get": q.get_rls}))
                    console.print("plan cache, bypass role:  "
                                  + await plan_cache(bypass, {"list": q.list_bypass, "get": q.get_bypass}))
                finally:
                    await rls.close()
                    await bypass.close()
            finally:
                await drop_bypass_role(bench.server_admin_url)
    console.print(f"{cfg.iterations} iterations each, random organisations and members, interleaved")
    console.print(res.list_rls.line("list, RLS (tenantry_app)"))
    console.print(res.list_bypass.line("list, BYPASSRLS + tenant_id=$1"))
    console.print(res.get_rls.line("get, RLS (tenantry_app)"))
    console.print(res.get_bypass.line("get, BYPASSRLS + tenant_id=$1"))
    list_ratio = percentile(res.list_rls.query, 95) / percentile(res.list_bypass.query, 95)
    get_ratio = percentile(res.get_rls.query, 95) / percentile(res.get_bypass.query, 95)
    console.print(f"info: get-by-id p95 RLS / bypass = {get_ratio:.3f}; "
                  f"p50 list = {percentile(res.list_rls.query, 50) / percentile(res.list_bypass.query, 50):.3f}, "
                  f"p50 get = {percentile(res.get_rls.query, 50) / percentile(res.get_bypass.query, 50):.3f}")
    return [("rls_overhead", list_ratio, "<=", 1.1)], index_cond


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "rls benchmark")
    started = time.perf_counter()
    figures, index_cond = asyncio.run(main_async(args.quick, args.seed))
    report(figures, started=started, quick=args.quick,
           notes=[f"explain tenant predicate in Index Cond: {'yes' if index_cond else 'no'}"])


if __name__ == "__main__":
    main()
