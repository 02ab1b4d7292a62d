"""What PgBouncer in transaction mode costs a database-touching route, and what it saves.

One figure, measured in this run, and one count:

- ``pgbouncer_vs_direct``: requests/s of ``GET /v1/members?limit=50`` (an API token; every
  request a transaction that sets the organisation and reads a page of members) on a
  server process whose ``APP_DATABASE_URL`` goes through Debian's PgBouncer 1.18 in
  ``pool_mode = transaction`` (``DATABASE_POOLER=transaction``: statement cache off) divided
  by requests/s of the same route on a second server process connected directly, same
  database, organisation, load generator, connections and duration, interleaved rounds.
  Goal >= 0.9.
- Connections held at 500 concurrent clients: 500 database clients of the runtime role
  each run a short transaction at once, directly and through PgBouncer; the PostgreSQL
  backends of that role are counted at the peak (direct: one per client, up to the
  server's ``max_connections``, the rest refused; through PgBouncer: its pool size).
  ``--quick``: 200 clients holding it for 0.05 s (more than ``max_connections`` all the same).

The organisation is the one of ``bench/decision.py`` (10,000 members; ``--quick``: 100).

Run: ``python bench/pooler.py [--quick] [--connections N] [--client wrk|httpx]``; needs
``pgbouncer`` (Debian's package, installed by scripts/test). ``BENCH_DATABASE_URL`` = a
superuser URL of a server of your own, else the embedded server in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import asyncpg
from _common import (
    AppServer,
    Figures,
    Variant,
    api_token,
    argument_parser,
    bench_database,
    connect,
    console,
    load_generator,
    machine_load,
    progress,
    report,
    run_server,
    server_facts,
    server_url,
)
from decision import FULL, QUICK, load_httpx, load_organisation, run_load

from app.database import DatabaseUrls, connection_params
from tests.support.pgbouncer import running_pgbouncer

SCRIPT = Path(__file__).resolve()
POOLED, DIRECT = "through PgBouncer", "direct"
CLIENTS = 500
#: Seconds each of them holds its transaction: through PgBouncer they queue for its pool,
#: so that part lasts CLIENTS / BOUNCER_POOL x HOLD_S.
HOLD_S = 0.3
QUICK_CLIENTS = 200
QUICK_HOLD_S = 0.05
BOUNCER_POOL = 20
BACKENDS = """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND usename = $1"""


def serve_from(config_path: str) -> None:
    """``--serve``: the app as ``tenantry serve`` builds it, direct or through the pooler."""
    from app.factory import create_app
    from app.logs import configure_logging
    from app.settings import Settings

    cfg = json.loads(Path(config_path).read_text())
    settings = Settings(secret_key=cfg["secret_key"], public_url=cfg["public_url"], host="127.0.0.1",
                        port=cfg["port"], data_dir=Path(cfg["data_dir"]), log_json=True,
                        embedded_worker=False)
    configure_logging(settings.log_level, json_lines=True)
    pooled = bool(cfg.get("pooled"))
    urls = DatabaseUrls(admin=cfg["admin_url"], app=cfg["app_url"],
                        direct=cfg.get("direct_url"), pooled=pooled)
    run_server(create_app(settings, urls), cfg["port"])


async def held_at_once(url: str, *, pooled: bool, role: str, admin: asyncpg.Connection, clients: int,
                       hold: float) -> tuple[int, int, int]:
    """``clients`` clients of ``url`` each hold a transaction for ``hold`` seconds at once:
    the peak of the role's backends meanwhile, the clients that ran, the clients refused."""
    params = connection_params(url)
    if pooled:
        params["statement_cache_size"] = 0
    peak = 0
    done = refused = 0
    stop = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, int(await admin.fetchval(BACKENDS, role)))
            await asyncio.sleep(0.02)

    async def client() -> None:
        nonlocal done, refused
        try:
            conn = await asyncpg.connect(**params, timeout=30)
        except (asyncpg.PostgresError, OSError, TimeoutError):
            refused += 1
            return
        try:
            async with conn.transaction():
                await conn.execute(f"SELECT pg_sleep({hold:g})")
            done += 1
        finally:
            await conn.close()

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(client() for _ in range(clients)))
    stop.set()
    await watcher
    return peak, done, refused


async def main_async(quick: bool, seed: int, connections: int, client: str) -> Figures:
    cfg = QUICK if quick else FULL
    clients, hold = (QUICK_CLIENTS, QUICK_HOLD_S) if quick else (CLIENTS, HOLD_S)
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-pooler-"))
    kind = load_generator(client)
    try:
        with server_url() as url:
            console.print(await server_facts(url))
            console.print(f"at start: {machine_load()}")
            async with bench_database(url) as bench:
                loaded = await load_organisation(bench, cfg, rng)
                token = await api_token(bench.urls, loaded.org_id, ("members:read",))
                role = connection_params(bench.urls.app)["user"]
                with running_pgbouncer(bench.urls.admin, [role, "postgres"], pool_size=BOUNCER_POOL) as pgb:
                    through = pgb.url(role, connection_params(bench.urls.app)["database"])
                    servers = {
                        POOLED: AppServer(SCRIPT, workdir, replace(bench.urls, app=through), name="pooled",
                                          config={"pooled": True, "direct_url": bench.urls.app}),
                        DIRECT: AppServer(SCRIPT, workdir, bench.urls, name="direct"),
                    }
                    paths = workdir / "paths.txt"
                    paths.write_text("/v1/members?limit=50\n" * 100)
                    variants = {name: Variant(name, paths) for name in servers}
                    for server in servers.values():
                        server.start()
                    try:
                        for server in servers.values():
                            await server.wait_ready()
                        for server in servers.values():  # untimed: connections and code paths
                            await run_load(kind, server.url, paths, workdir, token, cfg.warmup_seconds,
                                           connections, server.pid)
                        with progress() as bar:
                            task = bar.add_task("interleaved rounds", total=cfg.rounds * 2)
                            for index in range(cfg.rounds):
                                order = (POOLED, DIRECT) if index % 2 == 0 else (DIRECT, POOLED)
                                for name in order:
                                    server = servers[name]
                                    variants[name].rounds.append(await run_load(
                                        kind, server.url, paths, workdir, token, cfg.seconds, connections,
                                        server.pid))
                                    bar.advance(task)
                        problems = {n: s.errors_logged() for n, s in servers.items() if s.errors_logged()}
                    finally:
                        for server in servers.values():
                            server.stop()
                    admin = await connect(bench.admin_url)
                    try:
                        max_connections = int(await admin.fetchval("SHOW max_connections"))
                        held = {
                            DIRECT: await held_at_once(bench.urls.app, pooled=False, role=role, admin=admin,
                                                       clients=clients, hold=hold),
                            POOLED: await held_at_once(through, pooled=True, role=role, admin=admin,
                                                       clients=clients, hold=hold),
                        }
                    finally:
                        await admin.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    console.rule(f"GET /v1/members?limit=50 through PgBouncer (transaction mode) and direct ({kind})")
    for v in variants.values():
        p50, p99 = v.median("p50") * 1e3, v.median("p99") * 1e3
        console.print(f"{v.name:>18}: {v.rate:>8,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
                      f"server CPU {v.cpu_per_request * 1e6:.0f} us/request   errors {v.errors}")
    pairs = statistics.median(
        a.rate / b.rate for a, b in zip(variants[POOLED].rounds, variants[DIRECT].rounds, strict=True)
    )
    console.print(f"info: median over rounds of pooled / direct = {pairs:.3f}")
    console.rule(f"{clients} concurrent database clients, each holding a transaction for {hold:g} s")
    console.print(f"server max_connections = {max_connections}; PgBouncer default_pool_size = {BOUNCER_POOL}")
    for name, (peak, done, refused) in held.items():
        console.print(f"{name:>18}: {peak} PostgreSQL connections at the peak; {done} clients ran, "
                      f"{refused} refused")
    if variants[POOLED].errors or variants[DIRECT].errors or problems:
        raise SystemExit(f"errors: pooled {variants[POOLED].errors}, direct {variants[DIRECT].errors}, "
                         f"logged {problems}")
    if held[POOLED][1] != clients or held[POOLED][0] > BOUNCER_POOL:
        raise SystemExit(f"through PgBouncer: {held[POOLED]}")
    return [("pgbouncer_vs_direct", variants[POOLED].rate / variants[DIRECT].rate, ">=", 0.9)]


def main() -> None:
    args = argument_parser((__doc__ or "").splitlines()[0], serves=True, loads=True).parse_args()
    if args.serve:
        serve_from(args.serve)
        return
    if args.load:
        load_httpx(args.load)
        return
    started = time.perf_counter()
    figures = asyncio.run(main_async(args.quick, args.seed, args.connections, args.client))
    report(figures, started=started, quick=args.quick)


if __name__ == "__main__":
    main()
