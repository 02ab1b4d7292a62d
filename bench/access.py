"""What a product's access check costs over a bare JSON answer from the same server.

One figure, measured in this run:

- ``access_check_vs_bare``: requests/s of ``POST /v1/access/check`` (a product's
  client-credentials token with ``access:check``; every check allowed by an active grant,
  so each one writes its row in the access log) divided by requests/s of a bare Starlette
  route on the **same server process** that reads the same JSON body and answers a JSON
  body of the same shape, without authentication or database. The app is built by
  ``create_app`` exactly as ``tenantry serve`` builds it (one uvicorn worker, JSON access
  logs, its own process); the bare route is inserted into its router right before the
  check route. Same load generator (``wrk`` with a Lua script posting the bodies, or an
  httpx client in a separate process), same connections and duration, interleaved rounds
  with the order alternating. Goal >= 0.8 (raised from 0.7 in issue 16).

The check is answered by one SQL statement (``check_data_access``: find the grant, rank
the outcome, insert the log row) and, once the token was verified in the last seconds, on
the route's fast path without a transaction around it: one round trip per check. At the
end the script counts the access-log rows the rounds wrote against the checks answered.

Data: one organisation created by the product's ``create_organisation``; 1,000 members
(``--quick``; full: 10,000) and 20 admins loaded with COPY as the superuser; one approved,
active grant per member (all categories, every product) held by one of the admins; its
access policy does not email members about accesses (each new access would queue an
email, which is the mail queue's cost, not the check's). Each check asks about a random
member with the admin holding their grant and a random category.

Run: ``python bench/access.py [--quick] [--connections N] [--client wrk|httpx]``.
``BENCH_DATABASE_URL`` = a superuser URL of a server of your own, else the embedded server
in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from _common import (
    CLK_TCK,
    WRK_SUMMARY,
    AppServer,
    BenchDatabase,
    ExtraRoute,
    Figures,
    Round,
    TableRows,
    Variant,
    api_token,
    argument_parser,
    bench_database,
    bench_line,
    connect,
    console,
    copy_rows,
    fail,
    httpx_load,
    load_generator,
    machine_load,
    postgres_cpu,
    product_token,
    progress,
    report,
    serve,
    server_facts,
    server_url,
    timed_round,
    wrk_argv,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

SCRIPT = Path(__file__).resolve()
CHECK, BARE = "check", "bare"
CHECK_PATH, BARE_PATH = "/v1/access/check", "/bench/bare/check"
CATEGORIES = ("interaction", "diagnostic", "communications", "files")
GOAL = 0.8


@dataclass(frozen=True, slots=True)
class Config:
    members: int
    admins: int
    rounds: int
    seconds: float
    #: The untimed round of each variant before the timed ones (connections, code paths
    #: and the principal cache).
    warmup_seconds: float


#: A smoke test: every step and figure of the full run, with one round per variant just
#: long enough to answer some checks (each load round is a process of its own).
QUICK = Config(members=1_000, admins=20, rounds=1, seconds=0.2, warmup_seconds=0.1)
FULL = Config(members=10_000, admins=20, rounds=8, seconds=6.0, warmup_seconds=1.0)


def parse_args() -> argparse.Namespace:
    return argument_parser((__doc__ or "").splitlines()[0], serves=True, loads=True).parse_args()


# --- the organisation ----------------------------------------------------------------------


@dataclass(slots=True)
class Loaded:
    org_id: uuid.UUID
    product_id: uuid.UUID
    #: (member, the admin holding an active grant on them)
    pairs: list[tuple[uuid.UUID, uuid.UUID]]


async def load_organisation(bench: BenchDatabase, cfg: Config, rng: random.Random) -> Loaded:
    """The organisation through the product's service, then members, admins, a product and
    one active grant per member with COPY as the superuser (bypassing row-level security)."""
    from app.runtime import orm
    from tenants.actors import system_actor
    from tenants.organisations import service as organisations
    from tenants.organisations.models import OrganisationKind

    slug = f"bench-access-{uuid.uuid4().hex[:6]}"
    async with orm(bench.urls, pool_size=2):
        org = await organisations.create_organisation(
            slug=slug, name="Bench access", kind=OrganisationKind.EMPLOYER,
            domains=[f"{slug}.example"], actor=system_actor("bench"),
        )
    admin = await connect(bench.admin_url)
    try:
        root = await admin.fetchval("SELECT id FROM units WHERE tenant_id = $1 AND parent_id IS NULL", org.id)
        now = datetime.now(UTC)
        tenant = org.id
        person = ["id", "tenant_id", "created_at", "updated_at", "email", "name", "roles", "status",
                  "status_changed_at", "unit_id"]
        admins = [(uuid.uuid4(), tenant, now, now, f"admin{i}@{slug}.example", f"Admin {i}", '["admin"]',
                   "active", now, root) for i in range(cfg.admins)]
        members = [(uuid.uuid4(), tenant, now, now, f"m{i}@{slug}.example", f"Member {i}", '["member"]',
                    "active", now, root) for i in range(cfg.members)]
        product_id = uuid.uuid4()
        pairs = [(m[0], rng.choice(admins)[0]) for m in members]
        grants = [(uuid.uuid4(), tenant, now, now, admin_id, member_id, json.dumps(list(CATEGORIES)), True, "[]",
                   "Benchmark: a justified, approved access.", 48, False, "approved", "system:bench",
                   "bench", now, now + timedelta(hours=48), now, False)
                  for member_id, admin_id in pairs]
        tables: list[TableRows] = [
            ("members", person, admins + members),
            ("products", ["id", "tenant_id", "created_at", "updated_at", "key", "name", "description"],
             [(product_id, tenant, now, now, "mailbox", "Mailbox", "")]),
            # Members are not emailed about accesses here (the policy's switch): the figure is
            # the check and its log row; the emails are the mail queue's work.
            ("access_policies", ["id", "tenant_id", "created_at", "updated_at", "max_duration_hours",
                                 "emergency_allowed", "emergency_max_hours", "notify_member_per_access",
                                 "max_disclosure_delay_days"],
             [(uuid.uuid4(), tenant, now, now, 168, False, 24, False, 0)]),
            ("access_grants", ["id", "tenant_id", "created_at", "updated_at", "admin_id", "member_id", "categories",
                               "all_products", "product_ids", "justification", "duration_hours", "emergency",
                               "status", "requested_by", "requested_by_display", "starts_at", "ends_at",
                               "decided_at", "review_required"], grants),
        ]
        started = time.perf_counter()
        async with admin.transaction():
            await copy_rows(admin, tables)
        await admin.execute("VACUUM (ANALYZE)")
        console.print(f"loaded {cfg.members:,} members, {cfg.admins} admins, {len(grants):,} active grants in "
                      f"{time.perf_counter() - started:.1f} s")
    finally:
        await admin.close()
    return Loaded(org.id, product_id, pairs)


# --- the server ----------------------------------------------------------------------------


#: What the bare route answers: an allowed check's answer, same shape and size.
BARE_ANSWER = json.dumps({
    "allowed": True, "reason": None, "grant_id": str(uuid.uuid4()), "admin_id": str(uuid.uuid4()),
    "log_id": 123456,
}, separators=(",", ":")).encode()


def bench_routes(app: Starlette, cfg: dict[str, Any]) -> list[ExtraRoute]:
    """The bare route right before the check, and the fast path's statement counts."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def bare(request: Request) -> Response:
        await request.body()  # a JSON route reads its body too
        return Response(BARE_ANSWER, media_type="application/json")

    async def batches(request: Request) -> Response:
        batcher = getattr(app.state, "access_checks", None)
        counts = {"statements": batcher.statements, "checks": batcher.checks} if batcher else {}
        return Response(json.dumps(counts), media_type="application/json")

    return [
        ExtraRoute(Route(BARE_PATH, bare, methods=["POST"]), before=CHECK_PATH),
        ExtraRoute(Route("/bench/batches", batches, methods=["GET"])),
    ]


# --- load generators -----------------------------------------------------------------------

#: wrk: POSTs the JSON bodies listed in $BENCH_BODIES (one per line) in turn to $BENCH_PATH,
#: with $BENCH_TOKEN as bearer; prints the same BENCH summary line as _common.WRK_SCRIPT.
WRK_POST_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local path = os.getenv("BENCH_PATH")
local counter = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format("POST", path, nil, bodies[((counter - 1) % #bodies) + 1])
end
""" + WRK_SUMMARY


async def run_load(kind: str, url: str, path: str, bodies: Path, workdir: Path, token: str, seconds: float,
                   connections: int, server_pid: int, database_cpu: dict[str, float] | None = None) -> Round:
    """One timed round in a separate process (``wrk`` or this script's ``--load``); the CPU
    PostgreSQL used meanwhile is added to ``database_cpu[path]``."""
    if kind == "wrk":
        script = workdir / "post.lua"
        if not script.exists():
            script.write_text(WRK_POST_SCRIPT)
        argv = wrk_argv(script, url, connections=connections, seconds=seconds)
    else:
        config = workdir / "load.json"
        config.write_text(json.dumps({"url": url, "seconds": seconds, "connections": connections}))
        argv = [sys.executable, str(SCRIPT), "--load", str(config)]
    pg_before = postgres_cpu()
    round_ = await timed_round(argv, {"BENCH_BODIES": str(bodies), "BENCH_PATH": path, "BENCH_TOKEN": token},
                               server_pid)
    if database_cpu is not None:
        database_cpu[path] = database_cpu.get(path, 0.0) + postgres_cpu() - pg_before
    return round_


def load_httpx(config_path: str) -> None:
    """``--load``: N concurrent POSTs with one httpx client; prints wrk's BENCH line."""
    cfg = json.loads(Path(config_path).read_text())
    bodies = Path(os.environ["BENCH_BODIES"]).read_text().splitlines()
    path = os.environ["BENCH_PATH"]
    headers = {"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}", "Content-Type": "application/json"}

    def send(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
        return client.post(path, content=bodies[n % len(bodies)])

    summary = asyncio.run(httpx_load(cfg["url"], send, seconds=cfg["seconds"], connections=cfg["connections"],
                                     headers=headers))
    print(bench_line(summary), flush=True)


# --- measuring -----------------------------------------------------------------------------


async def log_rows(bench: BenchDatabase, org_id: uuid.UUID) -> tuple[int, int]:
    """(access-log rows, allowed ones) of the organisation, read as the superuser."""
    conn = await connect(bench.admin_url)
    try:
        row = await conn.fetchrow("SELECT count(*) AS n, count(*) FILTER (WHERE allowed) AS ok FROM access_log "
                                  "WHERE tenant_id = $1", org_id)
    finally:
        await conn.close()
    assert row is not None
    return int(row["n"]), int(row["ok"])


async def measure(cfg: Config, bench: BenchDatabase, loaded: Loaded, args: argparse.Namespace,
                  workdir: Path) -> tuple[Variant, Variant, str, int, tuple[int, int]]:
    kind = load_generator(args.client)
    admin_token = await api_token(bench.urls, loaded.org_id)
    rng = random.Random(args.seed + 1)
    bodies = workdir / "bodies.txt"
    bodies.write_text("".join(
        json.dumps({"admin_id": str(admin_id), "member_id": str(member_id), "product_id": str(loaded.product_id),
                    "category": rng.choice(CATEGORIES)}, separators=(",", ":")) + "\n"
        for member_id, admin_id in (rng.choice(loaded.pairs) for _ in range(20_000))
    ))
    variants = {
        CHECK: Variant(f"POST {CHECK_PATH} (product token, allowed, one log row each)", bodies),
        BARE: Variant(f"POST {BARE_PATH} (reads the body, same-sized JSON answer)", bodies),
    }
    paths = {CHECK: CHECK_PATH, BARE: BARE_PATH}
    server = AppServer(SCRIPT, workdir, bench.urls)
    database_cpu: dict[str, float] = {}
    server.start()
    try:
        await server.wait_ready()
        _, token = await product_token(server.url, admin_token, ["access:check"], loaded.product_id)
        console.print(f"server pid {server.pid} at {server.url}; load generator {kind}, {args.connections} "
                      f"connections, {cfg.rounds} rounds x {cfg.seconds:g} s per variant")
        before = await log_rows(bench, loaded.org_id)
        warm = 0
        for name in (CHECK, BARE):  # untimed: connections, code paths and the principal cache
            round_ = await run_load(kind, server.url, paths[name], bodies, workdir, token, cfg.warmup_seconds,
                                    args.connections, server.pid)
            warm += round_.requests if name == CHECK else 0
        with progress() as bar:
            task = bar.add_task("interleaved rounds", total=cfg.rounds * 2)
            for index in range(cfg.rounds):
                for name in (CHECK, BARE) if index % 2 == 0 else (BARE, CHECK):
                    try:
                        variants[name].rounds.append(await run_load(
                            kind, server.url, paths[name], bodies, workdir, token, cfg.seconds,
                            args.connections, server.pid, database_cpu))
                    except RuntimeError as exc:
                        # Say what the server saw too: a load generator that lost a
                        # connection says only that.
                        said = "\n".join(server.errors_logged()[-10:]) or server.log_tail(1500)
                        raise RuntimeError(f"{exc}\nthe app server's log (errors, or its end):\n{said}") from None
                    bar.advance(task)
        after = await log_rows(bench, loaded.org_id)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            batches = (await client.get("/bench/batches")).json()
        if batches.get("statements"):
            console.print(f"fast path: {batches['checks']:,} checks in {batches['statements']:,} statements "
                          f"({batches['checks'] / batches['statements']:.1f} checks per statement)")
        logged = len(server.errors_logged())
        if logged:
            raise fail(f"the server logged {logged} errors or 5xx; tail:\n{server.log_tail()}")
    finally:
        server.stop()
    written = (after[0] - before[0], after[1] - before[1])
    for name, variant in variants.items():
        answered = sum(r.requests for r in variant.rounds)
        console.print(f"PostgreSQL CPU during the {name} rounds: "
                      f"{database_cpu.get(paths[name], 0.0) / max(1, answered) * 1e6:.0f} us/request")
    return variants[CHECK], variants[BARE], kind, warm, written


async def main_async(args: argparse.Namespace) -> Figures:
    cfg = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-access-"))
    try:
        with server_url() as server:
            console.print(await server_facts(server))
            console.print(f"at start: {machine_load()}")
            async with bench_database(server) as bench:
                loaded = await load_organisation(bench, cfg, rng)
                check, bare, kind, warm, (rows, allowed) = await measure(cfg, bench, loaded, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.rule(f"access check against a bare route (same server process, interleaved, {kind})")
    for v in (check, bare):
        console.print(v.name)
        console.print(f"    {v.rate:>9,.0f} req/s   p50 {v.median('p50') * 1e3:6.2f} ms   p99 "
                      f"{v.median('p99') * 1e3:6.2f} ms (median of rounds)   errors {v.errors}")
        console.print(f"    server CPU {v.cpu_per_request * 1e6:.0f} us/request; rounds req/s: "
                      + ", ".join(f"{r.rate:,.0f}" for r in v.rounds))
    answered = warm + sum(r.requests for r in check.rounds)
    console.print(f"access-log rows written during the run: {rows:,} ({allowed:,} allowed) for {answered:,} "
                  "checks answered (rows may exceed answers by the checks in flight when a round ended)")
    if allowed < answered:
        raise fail("fewer allowed log rows than allowed answers: a check went unrecorded")
    pairs = statistics.median(c.rate / b.rate for c, b in zip(check.rounds, bare.rounds, strict=True))
    console.print(f"info: median over rounds of check / bare (each pair run back to back) = {pairs:.3f}")
    console.print(f"info: server CPU per request, bare / check = {bare.cpu_per_request / check.cpu_per_request:.3f}"
                  f" (the app process only; PostgreSQL's work is not in it); CLK_TCK {CLK_TCK}")
    if check.errors or bare.errors:
        raise fail(f"non-2xx answers or socket errors: check {check.errors}, bare {bare.errors}")
    if not rows or not answered:
        raise fail(f"the access check wrote {rows} log rows for {answered} checks answered")
    return [("access_check_vs_bare", check.rate / bare.rate, ">=", GOAL)]


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, routes=bench_routes, embedded_worker=False)
        return
    if args.load:
        load_httpx(args.load)
        return
    started = time.perf_counter()
    figures = asyncio.run(main_async(args))
    report(figures, started=started, quick=args.quick)


if __name__ == "__main__":
    main()
