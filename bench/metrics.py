"""What Prometheus metrics cost the hottest route: the decision API with metrics on / off.

One figure, measured in this run:

- ``metrics_overhead``: requests/s of ``GET /v1/members/{id}/settings`` (a product's
  client-credentials token, every answer cached: the route's fast path) on a server with
  metrics on (``/metrics`` served, every request counted and timed by route template)
  divided by requests/s of the same route on a second server process with
  ``TENANTRY_METRICS=false``, both built by ``create_app`` as ``tenantry serve`` builds
  them, on the same database and organisation, with the same load generator, connections
  and duration, in interleaved rounds (the order alternates). Goal >= 0.95.

The bench checks that the metrics server really counted the requests it answered (a
``/metrics`` scrape after the rounds), and stops with an error if a round answered
anything but 200 or the counts are missing.

The organisation is the one of ``bench/decision.py`` (10,000 members; ``--quick``: 100).

Run: ``python bench/metrics.py [--quick] [--connections N] [--client wrk|httpx]``.
``BENCH_DATABASE_URL`` = a superuser URL of a server of your own, else the embedded server
in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import (
    AppServer,
    Figures,
    Variant,
    api_token,
    argument_parser,
    bench_database,
    console,
    load_generator,
    machine_load,
    product_token,
    progress,
    report,
    serve,
    server_facts,
    server_url,
)
from decision import FULL, QUICK, load_httpx, load_organisation, run_load, warm

SCRIPT = Path(__file__).resolve()
ON, OFF = "metrics on", "metrics off"


def counted(scrape: str, route: str) -> float:
    """The 200 answers of ``route`` a scrape counts (0 when it has none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name == "tenantry_http_requests_total"
        and s.labels.get("route") == route
        and s.labels.get("status") == "200"
    )


async def main_async(quick: bool, seed: int, connections: int, client: str) -> Figures:
    cfg = QUICK if quick else FULL
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-metrics-"))
    kind = load_generator(client)
    try:
        with server_url() as url:
            console.print(await server_facts(url))
            console.print(f"at start: {machine_load()}")
            async with bench_database(url) as bench:
                loaded = await load_organisation(bench, cfg, rng)
                admin_token = await api_token(bench.urls, loaded.org_id)
                servers = {
                    ON: AppServer(SCRIPT, workdir, bench.urls, name="on", config={"metrics": True}),
                    OFF: AppServer(SCRIPT, workdir, bench.urls, name="off", config={"metrics": False}),
                }
                sequence = [rng.choice(loaded.member_ids) for _ in range(20_000)]
                paths = workdir / "paths.txt"
                paths.write_text("".join(f"/v1/members/{m}/settings\n" for m in sequence))
                variants = {name: Variant(name, paths) for name in servers}
                for server in servers.values():
                    server.start()
                try:
                    for server in servers.values():
                        await server.wait_ready()
                    # Each server issues tokens under its own address (its issuer).
                    tokens = {
                        name: (await product_token(s.url, admin_token, ["settings:read"]))[1]
                        for name, s in servers.items()
                    }
                    for name, server in servers.items():
                        token = tokens[name]
                        seconds = await warm(server.url, token, loaded.member_ids)
                        console.print(f"{name}: warmed {len(loaded.member_ids):,} answers in {seconds:.1f} s")
                        await run_load(kind, server.url, paths, workdir, token, cfg.warmup_seconds, connections,
                                       server.pid)
                    with progress() as bar:
                        task = bar.add_task("interleaved rounds", total=cfg.rounds * 2)
                        for index in range(cfg.rounds):
                            order = (ON, OFF) if index % 2 == 0 else (OFF, ON)
                            for name in order:
                                server = servers[name]
                                variants[name].rounds.append(await run_load(
                                    kind, server.url, paths, workdir, tokens[name], cfg.seconds,
                                    connections, server.pid))
                                bar.advance(task)
                    async with httpx.AsyncClient(base_url=servers[ON].url, timeout=10) as http:
                        scrape = (await http.get("/metrics")).text
                        off_answer = (await http.get(f"{servers[OFF].url}/metrics")).status_code
                finally:
                    for server in servers.values():
                        server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    measured = sum(r.requests for r in variants[ON].rounds)
    seen = counted(scrape, "/v1/members/{id}/settings")
    console.rule(f"decision API with metrics on and off (two server processes, interleaved, {kind})")
    for v in variants.values():
        p50, p99 = v.median("p50") * 1e3, v.median("p99") * 1e3
        console.print(f"{v.name:>12}: {v.rate:>9,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
                      f"server CPU {v.cpu_per_request * 1e6:.0f} us/request   errors {v.errors}")
    pairs = statistics.median(
        a.rate / b.rate for a, b in zip(variants[ON].rounds, variants[OFF].rounds, strict=True)
    )
    console.print(f"info: median over rounds of on / off = {pairs:.3f}")
    console.print(f"the metrics server counted {seen:,.0f} answers of the route (timed rounds: {measured:,}); "
                  f"/metrics on the server without metrics answered {off_answer}")
    if variants[ON].errors or variants[OFF].errors:
        raise SystemExit(f"non-200 answers: on {variants[ON].errors}, off {variants[OFF].errors}")
    if seen < measured:
        raise SystemExit("the metrics server did not count the requests it answered")
    if off_answer != 404:
        raise SystemExit("the server with TENANTRY_METRICS=false still serves /metrics")
    return [("metrics_overhead", variants[ON].rate / variants[OFF].rate, ">=", 0.95)]


def main() -> None:
    args = argument_parser((__doc__ or "").splitlines()[0], serves=True, loads=True).parse_args()
    if args.serve:
        metrics = bool(json.loads(Path(args.serve).read_text())["metrics"])
        serve(args.serve, metrics=metrics)
        return
    if args.load:
        load_httpx(args.load)
        return
    started = time.perf_counter()
    figures = asyncio.run(main_async(args.quick, args.seed, args.connections, args.client))
    report(figures, started=started, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
