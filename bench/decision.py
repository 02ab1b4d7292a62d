"""What the decision API costs over a bare answer, and what resolving one member costs.

Two figures, measured in this run:

- ``decision_vs_bare``: requests/s of ``GET /v1/members/{id}/settings`` (a product's
  client-credentials token, every answer already cached, so the route's fast path answers
  from the per-process ``DecisionCache``) divided by requests/s of a bare Starlette route
  on the **same server process** that returns the same bytes (one decision body, the same
  headers) without authentication, cache or database. The app is built by ``create_app``
  exactly as ``tenantry serve`` builds it, one uvicorn worker in its own process; the bare
  route is inserted into its router right before the decision route (same middleware,
  same routing cost). The same load generator (``wrk`` with a Lua script for the
  Authorization header, or an httpx client in a separate process with ``--client httpx``),
  the same connections and duration, interleaved rounds (the order alternates). p50 and
  p99 latency of both are printed. Goal >= 0.8.
- ``resolve_p99_us``: p99 in microseconds of ``CompiledPolicy.resolve`` for a member of a
  unit at depth 10 (11 units on its path) in 25 to 49 of 50 groups, a new set of groups
  each call (memo misses: the group merge is timed), with 3 choices, in an organisation
  of 200 units, 50 groups and 300 rules over the built-in catalogue (16 settings), timed
  call by call with ``time.perf_counter_ns`` with the garbage collector **on** (the GC-off
  figure is printed too). Goal <= 50. The time to compile the whole organisation is
  printed, and the time ``compiled_policy()`` takes on the loaded organisation (reads
  included).

The organisation served over HTTP: 10,000 members (``--quick``: 100), 200 units up to
depth 8, 50 groups, 300 rules with values valid in ``policies.catalogue.BUILTIN``, a third
of the members with choices, group memberships from none to all 50. It is created through
the product's ``create_organisation`` and then loaded with COPY as the superuser.

Run: ``python bench/decision.py [--quick] [--connections N] [--client wrk|httpx]``.
``BENCH_DATABASE_URL`` = a superuser URL of a server of your own, else the embedded server
in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from _common import (
    WRK_SCRIPT,
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
    fresh_token,
    httpx_load,
    load_generator,
    machine_load,
    percentile,
    product_token,
    progress,
    report,
    serve,
    server_facts,
    server_url,
    timed_round,
    wrk_argv,
)

from policies.catalogue import BUILTIN, Catalogue, Setting, SettingType, Value
from policies.resolve import (
    GroupRef,
    MemberFacts,
    Rule,
    TargetKind,
    compile_policy,
    resolve_settings,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

SCRIPT = Path(__file__).resolve()
DECISION = "decision"
BARE = "bare"


@dataclass(frozen=True, slots=True)
class Config:
    members: int
    units: int
    max_depth: int
    groups: int
    rules: int
    rounds: int
    seconds: float
    resolve_iterations: int
    compile_repeats: int
    #: The untimed round of each variant before the timed ones (connections, code paths
    #: and the principal cache).
    warmup_seconds: float


#: A smoke test: every step and figure of the full run, on just enough data, and one short
#: round per variant (each load round is a process of its own, which costs most of a second).
QUICK = Config(members=100, units=60, max_depth=8, groups=20, rules=100, rounds=1, seconds=0.2,
               resolve_iterations=3_000, compile_repeats=20, warmup_seconds=0.1)
FULL = Config(members=10_000, units=200, max_depth=8, groups=50, rules=300, rounds=8, seconds=6.0,
              resolve_iterations=300_000, compile_repeats=200, warmup_seconds=1.0)

#: The in-process resolution figure uses this organisation in both modes (it takes seconds).
RESOLVE_SHAPE = {"units": 200, "max_depth": 10, "groups": 50, "rules": 300}


def parse_args() -> argparse.Namespace:
    return argument_parser((__doc__ or "").splitlines()[0], serves=True, loads=True).parse_args()


# --- the organisation, as plain data ------------------------------------------------------


@dataclass(slots=True)
class Shape:
    """Units (id -> parent), their depth and path, groups (id -> priority) and rules."""

    parents: dict[str, str | None]
    depth: dict[str, int]
    paths: dict[str, str]
    groups: dict[str, int]
    rules: list[Rule] = field(default_factory=list)

    def unit_path(self, unit: str) -> tuple[str, ...]:
        return tuple(self.paths[unit].split("/"))


def rule_value(setting: Setting, rng: random.Random) -> Value:
    if setting.type is SettingType.BOOL:
        return rng.random() < 0.5
    if setting.type is SettingType.ENUM:
        return rng.choice(setting.allowed)
    if setting.type is SettingType.INT:
        return rng.randint(setting.minimum or 0, setting.maximum or 100)
    return tuple(rng.sample(setting.allowed, rng.randint(0, len(setting.allowed))))


def make_shape(rng: random.Random, *, units: int, max_depth: int, groups: int, rules: int,
               catalogue: Catalogue = BUILTIN, root: str | None = None) -> Shape:
    """A random tree with one chain down to ``max_depth`` (so the deepest case exists), the
    other units under random parents above that depth; groups with priorities that tie
    sometimes; ``rules`` distinct (target, setting) rules, 60 % on units, 20 % enforced."""
    root = root or str(uuid.uuid4())
    parents: dict[str, str | None] = {root: None}
    depth = {root: 0}
    paths = {root: root}

    def add(parent: str) -> str:
        unit = str(uuid.uuid4())
        parents[unit], depth[unit], paths[unit] = parent, depth[parent] + 1, f"{paths[parent]}/{unit}"
        return unit

    last = root
    for _ in range(min(max_depth, units - 1)):
        last = add(last)
    while len(parents) < units:
        add(rng.choice([u for u in parents if depth[u] < max_depth]))
    group_ids = {str(uuid.uuid4()): rng.randint(-5, 20) for _ in range(groups)}
    shape = Shape(parents, depth, paths, group_ids)
    settings = list(catalogue)
    seen: set[tuple[TargetKind, str, str]] = set()
    unit_ids, group_list = list(parents), list(group_ids)
    capacity = len(settings) * (len(unit_ids) + len(group_list))
    while len(shape.rules) < min(rules, capacity):
        kind = TargetKind.UNIT if rng.random() < 0.6 or not group_list else TargetKind.GROUP
        target = rng.choice(unit_ids if kind is TargetKind.UNIT else group_list)
        setting = rng.choice(settings)
        if (kind, target, setting.key) in seen:
            continue
        seen.add((kind, target, setting.key))
        shape.rules.append(Rule(str(uuid.uuid4()), kind, target, setting.key, rule_value(setting, rng),
                                rng.random() < 0.2, f"bench reason {len(shape.rules)}"))
    return shape


def member_groups(rng: random.Random, group_ids: Sequence[str]) -> list[str]:
    """Most members are in a few groups, some in many, a few in all of them."""
    draw = rng.random()
    count = (0 if draw < 0.3 else rng.randint(1, 3) if draw < 0.8 else rng.randint(4, 15) if draw < 0.98
             else len(group_ids))
    return rng.sample(list(group_ids), min(count, len(group_ids)))


def member_choices(rng: random.Random, catalogue: Catalogue = BUILTIN) -> dict[str, Value]:
    if rng.random() >= 1 / 3:
        return {}
    picked = rng.sample(list(catalogue), rng.randint(1, 3))
    return {s.key: rule_value(s, rng) for s in picked}


# --- loading ------------------------------------------------------------------------------


@dataclass(slots=True)
class Loaded:
    org_id: uuid.UUID
    slug: str
    member_ids: list[uuid.UUID]
    shape: Shape


def _json(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


async def load_organisation(bench: BenchDatabase, cfg: Config, rng: random.Random) -> Loaded:
    """The organisation through the product's service (row, audit chain, root unit), then
    units, groups, members, memberships, rules and choices with COPY as the superuser
    (which bypasses row-level security)."""
    from app.runtime import orm
    from tenants.actors import system_actor
    from tenants.organisations import service as organisations
    from tenants.organisations.models import OrganisationKind

    slug = f"bench-decision-{uuid.uuid4().hex[:6]}"
    async with orm(bench.urls, pool_size=2):
        org = await organisations.create_organisation(
            slug=slug, name="Bench decisions", kind=OrganisationKind.EMPLOYER,
            domains=[f"{slug}.example"], actor=system_actor("bench"),
        )
    admin = await connect(bench.admin_url)
    try:
        root = await admin.fetchval("SELECT id FROM units WHERE tenant_id = $1 AND parent_id IS NULL", org.id)
        shape = make_shape(rng, units=cfg.units, max_depth=cfg.max_depth, groups=cfg.groups, rules=cfg.rules,
                           root=str(root))
        now = datetime.now(UTC)
        tenant = org.id
        units = [(uuid.UUID(u), tenant, now, now, f"Unit {i}", shape.paths[u], shape.depth[u], uuid.UUID(p))
                 for i, (u, p) in enumerate(shape.parents.items()) if p is not None]
        groups = [(uuid.UUID(g), tenant, now, now, f"Group {i}", "", priority)
                  for i, (g, priority) in enumerate(shape.groups.items())]
        unit_ids, group_ids = list(shape.parents), list(shape.groups)
        members, memberships, choices = [], [], []
        for i in range(cfg.members):
            mid = uuid.uuid4()
            members.append((mid, tenant, now, now, f"m{i}@{slug}.example", f"Member {i}", '["member"]', "active",
                            now, uuid.UUID(rng.choice(unit_ids))))
            memberships += [(uuid.uuid4(), tenant, now, now, uuid.UUID(g), mid)
                            for g in member_groups(rng, group_ids)]
            choices += [(uuid.uuid4(), tenant, now, now, key, _json(value), mid)
                        for key, value in member_choices(rng).items()]
        rules = [(uuid.UUID(r.id), tenant, now, now, r.setting, _json(r.value), r.enforced, r.reason,
                  uuid.UUID(r.target_id) if r.target_kind is TargetKind.UNIT else None,
                  uuid.UUID(r.target_id) if r.target_kind is TargetKind.GROUP else None)
                 for r in shape.rules]
        tables: list[TableRows] = [
            ("units", ["id", "tenant_id", "created_at", "updated_at", "name", "path", "depth", "parent_id"], units),
            ("groups", ["id", "tenant_id", "created_at", "updated_at", "name", "description", "priority"], groups),
            ("members", ["id", "tenant_id", "created_at", "updated_at", "email", "name", "roles", "status",
                         "status_changed_at", "unit_id"], members),
            ("group_memberships", ["id", "tenant_id", "created_at", "updated_at", "group_id", "member_id"],
             memberships),
            ("policy_rules", ["id", "tenant_id", "created_at", "updated_at", "setting", "value", "enforced",
                              "reason", "unit_id", "group_id"], rules),
            ("member_choices", ["id", "tenant_id", "created_at", "updated_at", "setting", "value", "member_id"],
             choices),
        ]
        started = time.perf_counter()
        async with admin.transaction():
            await copy_rows(admin, tables)
            # As a rule change through the service would: a new policy version.
            await admin.execute("UPDATE organisations SET policy_version = 1 WHERE id = $1", tenant)
        await admin.execute("VACUUM (ANALYZE)")
        console.print(f"loaded {len(members):,} members, {len(units) + 1} units (depth <= {cfg.max_depth}), "
                      f"{len(groups)} groups, {len(memberships):,} memberships, {len(rules)} rules, "
                      f"{len(choices):,} choices in {time.perf_counter() - started:.1f} s")
    finally:
        await admin.close()
    return Loaded(org.id, slug, [m[0] for m in members], shape)


async def sample_answer(bench: BenchDatabase, org_id: uuid.UUID, member_ids: Sequence[uuid.UUID]) -> bytes:
    """A decision body rendered exactly as the route renders it, of median size among a
    sample of members: what the bare route returns."""
    from app.runtime import orm
    from app.v1.settings import render_settings
    from tenants import db
    from tenants.ids import OrgId
    from tenants.policy import service as policy

    async with orm(bench.urls, pool_size=1), db.tenant_transaction(OrgId(org_id)):
        snapshot = await policy.compiled_policy()
        facts = await policy.member_facts(list(member_ids[:200]))
        bodies = sorted((render_settings(m, snapshot, snapshot.compiled.resolve(str(f.unit_id), f.group_ids,
                                                                                  f.choices))
                         for m, f in facts.items()), key=len)
    return bodies[len(bodies) // 2]


async def compile_timings(bench: BenchDatabase, org_id: uuid.UUID, repeats: int) -> tuple[float, float]:
    """Seconds for ``compiled_policy()`` (reads and compile, no cache) and for the pure
    ``compile_policy`` of the same rows; medians."""
    from app.runtime import orm
    from tenants import db
    from tenants.ids import OrgId
    from tenants.policy import service as policy
    from tenants.policy.models import PolicyRule

    whole, pure = [], []
    async with orm(bench.urls, pool_size=1):
        for _ in range(max(3, repeats // 20)):
            async with db.tenant_transaction(OrgId(org_id)):
                started = time.perf_counter()
                await policy.compiled_policy()
                whole.append(time.perf_counter() - started)
        async with db.tenant_transaction(OrgId(org_id)):
            cat = await policy.catalogue()
            units, groups = await policy._structure()
            rules = [policy.as_rule(r) for r in await PolicyRule.all()]
        for _ in range(repeats):
            started = time.perf_counter()
            compile_policy(cat, units, rules, groups)
            pure.append(time.perf_counter() - started)
    return statistics.median(whole), statistics.median(pure)


# --- the server -------------------------------------------------------------------------


def bench_routes(app: Starlette, cfg: dict[str, Any]) -> list[ExtraRoute]:
    """The bare route, right before the decision route, and a count of the cached answers."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    body = Path(cfg["bare_body"]).read_bytes()
    headers = {"ETag": '"bench-bare-etag-0123456789abcdef"', "Cache-Control": "private, no-cache",
               "Vary": "Authorization"}

    async def bare(request: Request) -> Response:
        return Response(body, media_type="application/json", headers=headers)

    async def cached(request: Request) -> Response:
        return JSONResponse({"answers": len(app.state.decisions._answers)})

    return [
        ExtraRoute(Route("/bench/bare/{id}", bare, methods=["GET"]), before="/v1/members/{id}/settings"),
        ExtraRoute(Route("/bench/cached", cached, methods=["GET"])),
    ]


async def warm(url: str, token: str, member_ids: Sequence[uuid.UUID], concurrency: int = 8) -> float:
    """Request every member's answer once (computes and caches it); seconds taken."""
    ids = iter(member_ids)
    failures: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        with progress() as bar:
            task = bar.add_task("warm the decision cache", total=len(member_ids))

            async def worker() -> None:
                for mid in ids:
                    response = await client.get(f"/v1/members/{mid}/settings")
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    bar.advance(task)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        raise RuntimeError(f"{len(failures)} warm-up requests failed, e.g. {failures[0]}")
    return time.perf_counter() - started


# --- load generators --------------------------------------------------------------------


async def run_load(kind: str, url: str, paths_file: Path, workdir: Path, token: str, seconds: float,
                   connections: int, server_pid: int) -> Round:
    """One timed round in a separate process (``wrk`` or this script's ``--load``)."""
    if kind == "wrk":
        script = workdir / "bench.lua"
        if not script.exists():
            script.write_text(WRK_SCRIPT)
        argv = wrk_argv(script, url, connections=connections, seconds=seconds)
    else:
        config = workdir / "load.json"
        config.write_text(json.dumps({"url": url, "paths": str(paths_file), "seconds": seconds,
                                      "connections": connections}))
        argv = [sys.executable, str(SCRIPT), "--load", str(config)]
    return await timed_round(argv, {"BENCH_PATHS": str(paths_file), "BENCH_TOKEN": token}, server_pid)


def load_httpx(config_path: str) -> None:
    """``--load``: N concurrent GETs with one httpx client; prints wrk's BENCH line."""
    cfg = json.loads(Path(config_path).read_text())
    paths = Path(cfg["paths"]).read_text().split()
    headers = {"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}", "Accept": "application/json"}

    def send(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
        return client.get(paths[n % len(paths)])

    summary = asyncio.run(httpx_load(cfg["url"], send, seconds=cfg["seconds"], connections=cfg["connections"],
                                     headers=headers))
    print(bench_line(summary), flush=True)


async def measure_http(cfg: Config, bench: BenchDatabase, loaded: Loaded, args: argparse.Namespace,
                       workdir: Path) -> tuple[Variant, Variant, str]:
    kind = load_generator(args.client)
    body = await sample_answer(bench, loaded.org_id, loaded.member_ids)
    admin_token = await api_token(bench.urls, loaded.org_id)
    body_path = workdir / "bare.json"
    body_path.write_bytes(body)
    server = AppServer(SCRIPT, workdir, bench.urls, config={"bare_body": str(body_path)})
    rng = random.Random(args.seed + 1)
    ids = list(loaded.member_ids)
    sequence = [rng.choice(ids) for _ in range(20_000)]
    variants = {
        DECISION: Variant("GET /v1/members/{id}/settings (product token, cached answer)", workdir / "decision.txt"),
        BARE: Variant("GET /bench/bare/{id} (same bytes, no auth, no cache)", workdir / "bare.txt"),
    }
    variants[DECISION].paths_file.write_text("".join(f"/v1/members/{m}/settings\n" for m in sequence))
    variants[BARE].paths_file.write_text("".join(f"/bench/bare/{m}\n" for m in sequence))
    server.start()
    try:
        await server.wait_ready()
        client_info, token = await product_token(server.url, admin_token, ["settings:read"])
        token_at = time.monotonic()
        console.print(f"server pid {server.pid} at {server.url}; decision body {len(body):,} bytes; "
                      f"load generator {kind}, {args.connections} connections, {cfg.rounds} rounds x "
                      f"{cfg.seconds:g} s per variant")
        seconds = await warm(server.url, token, ids)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            cached = (await client.get("/bench/cached")).json()["answers"]
        console.print(f"warmed {len(ids):,} answers in {seconds:.1f} s ({len(ids) / seconds:,.0f}/s, computed "
                      f"and cached); answers in the cache: {cached:,}")
        for name in (DECISION, BARE):  # untimed: connections, code paths and the principal cache
            await run_load(kind, server.url, variants[name].paths_file, workdir, token, cfg.warmup_seconds,
                           args.connections, server.pid)
        with progress() as bar:
            task = bar.add_task("interleaved rounds", total=cfg.rounds * 2)
            for index in range(cfg.rounds):
                if time.monotonic() - token_at > 600:  # tokens live 900 s
                    token, token_at = await fresh_token(server.url, client_info), time.monotonic()
                order = (DECISION, BARE) if index % 2 == 0 else (BARE, DECISION)
                for name in order:
                    variants[name].rounds.append(await run_load(
                        kind, server.url, variants[name].paths_file, workdir, token, cfg.seconds,
                        args.connections, server.pid))
                    bar.advance(task)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            cached_after = (await client.get("/bench/cached")).json()["answers"]
        console.print(f"answers in the cache after the rounds: {cached_after:,}")
        logged = len(server.errors_logged())
        if logged:
            raise fail(f"the server logged {logged} errors or 5xx; tail:\n{server.log_tail()}")
    finally:
        server.stop()
    return variants[DECISION], variants[BARE], kind


# --- in process: resolve and compile ------------------------------------------------------


@dataclass(slots=True)
class ResolveFigures:
    p50_us: float
    p99_us: float
    p999_us: float
    p99_gc_off_us: float
    p50_gc_off_us: float
    cpu_p99_us: float
    compile_ms: float
    path_length: int
    groups: int
    settings: int
    rules: int


def measure_resolve(cfg: Config, seed: int) -> ResolveFigures:
    # Imported here, not at the top: the load generator (``--load``) runs this module too,
    # once a round, and needs neither.
    from app.runtime import tune_gc
    from app.settings import Settings

    # The garbage collector as the service sets it (create_app and the worker call this):
    # its young-generation pauses are part of a resolution's tail.
    tune_gc(Settings().gc_threshold)
    rng = random.Random(seed + 2)
    shape = make_shape(rng, units=RESOLVE_SHAPE["units"], max_depth=RESOLVE_SHAPE["max_depth"],
                       groups=RESOLVE_SHAPE["groups"], rules=RESOLVE_SHAPE["rules"])
    compile_times = []
    for _ in range(cfg.compile_repeats):
        started = time.perf_counter_ns()
        compiled = compile_policy(BUILTIN, shape.parents, shape.rules, shape.groups)
        compile_times.append(time.perf_counter_ns() - started)
    deepest = max(shape.parents, key=lambda u: shape.depth[u])
    group_ids = list(shape.groups)
    choices: dict[str, Value] = {"advertising.personalised_ads": True, "cookies.analytics": True,
                                 "cookies.necessary": False}
    facts = MemberFacts(shape.unit_path(deepest), tuple(GroupRef(g, shape.groups[g]) for g in group_ids), choices)
    reference = resolve_settings(BUILTIN, shape.rules, facts)
    if compiled.resolve(deepest, group_ids, choices) != reference:
        raise AssertionError("compiled resolution differs from the reference for the timed member")
    resolve = compiled.resolve
    clock = time.perf_counter_ns
    n = cfg.resolve_iterations
    # Members with varied group sets: each timed call brings a set the compiled policy has
    # not merged yet (a memo miss: the group merge is in the time), as a cold decision for a
    # member does. Ten of them are checked against the reference.
    def varied() -> frozenset[str]:
        return frozenset(rng.sample(group_ids, rng.randint(len(group_ids) // 2, len(group_ids) - 1)))

    for groups in (varied() for _ in range(10)):
        member = MemberFacts(facts.unit_path, tuple(GroupRef(g, shape.groups[g]) for g in groups), choices)
        if compiled.resolve(deepest, groups, choices) != resolve_settings(BUILTIN, shape.rules, member):
            raise AssertionError("compiled resolution differs from the reference for a timed member")

    def timed(gc_on: bool) -> list[int]:
        compiled._group_patches.clear()
        times = [0] * n
        if not gc_on:
            gc.disable()
        try:
            for i in range(n):
                groups = varied()
                started = clock()
                resolve(deepest, groups, choices)
                times[i] = clock() - started
        finally:
            gc.enable()
        return times

    def cpu_timed() -> list[int]:  # thread CPU time: what the scheduler's preemptions do not add
        compiled._group_patches.clear()
        times = [0] * (n // 4)
        cpu = time.thread_time_ns
        for i in range(len(times)):
            groups = varied()
            started = cpu()
            resolve(deepest, groups, choices)
            times[i] = cpu() - started
        return times

    for _ in range(2_000):  # warm-up (the code, not the memo: the timed sets are new)
        resolve(deepest, group_ids, choices)
    hits = [0] * min(n, 20_000)
    for i in range(len(hits)):
        started = clock()
        resolve(deepest, group_ids, choices)
        hits[i] = clock() - started
    on, off, cpu_times = timed(True), timed(False), cpu_timed()
    console.print(f"resolve on a memo hit (the same groups every call): p99 {percentile(hits, 99) / 1e3:.2f} us")
    us = 1e-3
    return ResolveFigures(
        p50_us=percentile(on, 50) * us, p99_us=percentile(on, 99) * us, p999_us=percentile(on, 99.9) * us,
        p99_gc_off_us=percentile(off, 99) * us, p50_gc_off_us=percentile(off, 50) * us,
        cpu_p99_us=percentile(cpu_times, 99) * us, compile_ms=statistics.median(compile_times) / 1e6,
        path_length=len(facts.unit_path), groups=len(group_ids), settings=len(BUILTIN.settings),
        rules=len(shape.rules),
    )


# --- main --------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> Figures:
    cfg = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-decision-"))
    try:
        with server_url() as server:
            console.print(await server_facts(server))
            console.print(f"at start: {machine_load()}")
            async with bench_database(server) as bench:
                loaded = await load_organisation(bench, cfg, rng)
                whole, pure = await compile_timings(bench, loaded.org_id, cfg.compile_repeats)
                decision, bare, client_kind = await measure_http(cfg, bench, loaded, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.rule(f"decision API against a bare route (same server process, interleaved, {client_kind})")
    for v in (decision, bare):
        console.print(f"{v.name}")
        p50, p99 = v.median("p50") * 1e3, v.median("p99") * 1e3
        console.print(f"    {v.rate:>9,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms "
                      f"(median of rounds; worst {max(r.p99 for r in v.rounds) * 1e3:.2f} ms)   errors {v.errors}")
        console.print(f"    server CPU {v.cpu_per_request * 1e6:.0f} us/request; rounds req/s: "
                      + ", ".join(f"{r.rate:,.0f}" for r in v.rounds))
    console.print(f"p99 decision {decision.median('p99') * 1e3:.2f} ms, bare {bare.median('p99') * 1e3:.2f} ms")
    cpu_ratio = bare.cpu_per_request / decision.cpu_per_request
    pairs = statistics.median(d.rate / b.rate for d, b in zip(decision.rounds, bare.rounds, strict=True))
    console.print(f"info: median over rounds of decision / bare (each pair run back to back) = {pairs:.3f}")
    console.print(f"info: server CPU per request, bare / decision = {cpu_ratio:.3f}"
                  " (less sensitive to other load on the machine)")
    if decision.errors or bare.errors:
        raise fail(f"non-2xx answers or socket errors: decision {decision.errors}, bare {bare.errors}")
    if not sum(r.requests for r in decision.rounds):
        raise fail("the decision route answered nothing")
    console.rule("resolution in process")
    res = measure_resolve(cfg, args.seed)
    console.print(f"loaded organisation ({cfg.units} units, depth <= {cfg.max_depth}, {cfg.groups} groups, "
                  f"{cfg.rules} rules): compiled_policy() {whole * 1e3:.2f} ms")
    console.print(f"    (with its reads; compile_policy alone {pure * 1e3:.2f} ms)")
    console.print(f"resolve organisation ({RESOLVE_SHAPE['units']} units, depth <= {RESOLVE_SHAPE['max_depth']}, "
                  f"{res.groups} groups, {res.rules} rules, {res.settings} settings): compile_policy "
                  f"{res.compile_ms:.2f} ms (median of {cfg.compile_repeats})")
    console.print(f"resolve: member at depth {res.path_length - 1} ({res.path_length} units on the path), "
                  f"{res.groups // 2} to {res.groups - 1} of its {res.groups} groups (a new set each call: "
                  f"memo misses), 3 choices; {cfg.resolve_iterations:,} timed calls per line")
    console.print(f"    GC on:  p50 {res.p50_us:.2f} us   p99 {res.p99_us:.2f} us   p99.9 {res.p999_us:.2f} us")
    console.print(f"    GC off: p50 {res.p50_gc_off_us:.2f} us   p99 {res.p99_gc_off_us:.2f} us")
    console.print(f"    thread CPU time (no preemption in it), GC on: p99 {res.cpu_p99_us:.2f} us")
    return [
        ("decision_vs_bare", decision.rate / bare.rate, ">=", 0.8),
        ("resolve_p99_us", res.p99_us, "<=", 50),
    ]


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, routes=bench_routes)
        return
    if args.load:
        load_httpx(args.load)
        return
    started = time.perf_counter()
    figures = asyncio.run(main_async(args))
    report(figures, started=started, quick=args.quick)


if __name__ == "__main__":
    main()
