"""Departure transfer: moving a leaver's content items to their successor through the
durable workflow, against one raw SQL UPDATE of the same rows on the same database.

- **Workflow**: a departure is started through the service; a real ``tenantry worker``
  process runs its steps. Timed: the transfer step, from its start to its finish as the
  database records them (batches of 5,000 items, each one transaction with its checkpoint
  and its ``content.transferred`` event per product).
- **Baseline**: ``UPDATE content_items SET member_id = successor, ... WHERE member_id =
  leaver`` as the runtime role inside a tenant transaction: the least any implementation
  must do.

Both run on the same table, reset and freshly vacuumed before each run: one warm-up of
both, then rounds alternating which side goes first; the figure is the ratio of the
medians over the rounds (a departing member per round: each leaves only once). The worker's memory is sampled
while it works (it must stay flat: batches, not the whole set, are held). Also measured:
the ingest rate of the NDJSON bulk registry endpoint through a real ``tenantry serve``.

Figures (last lines)::

    ratio transfer_vs_raw_update = X (goal <= 2)

``python bench/transfer.py --quick`` uses 10,000 items (default 1,000,000) and one round after
the warm-up (default 3).
``BENCH_DATABASE_URL`` = a superuser URL of your own server; else an embedded one.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from _common import (
    BenchDatabase,
    bench_database,
    connect,
    console,
    free_port,
    machine_load,
    meets,
    parse_args,
    progress,
    ratio_line,
    server_facts,
    server_url,
    spawn_tenantry,
    wait_for_http,
)

GOAL = 2.0
LOAD_CHUNK = 100_000
INGEST_BATCH = 100_000  # the endpoint's maximum per request


async def setup_org(bench: BenchDatabase, leavers: int
                    ) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID], uuid.UUID, str]:
    """An organisation with a successor, ``leavers`` members who report to them (one leaves
    per round), a product; an all-permissions token."""
    from app.runtime import orm
    from tenants import db
    from tenants.actors import system_actor
    from tenants.members.lifecycle import MemberStatus
    from tenants.members.service import NewMember, create_member
    from tenants.organisations import service as organisations
    from tenants.organisations.models import OrganisationKind
    from tenants.permissions import Permission
    from tenants.products import service as products
    from tenants.tokens import service as tokens
    from tenants.units.models import Unit

    actor = system_actor("bench")
    async with orm(bench.urls, pool_size=2):
        org = await organisations.create_organisation(
            slug="transfer-bench", name="Transfer Bench", kind=OrganisationKind.EMPLOYER,
            domains=["transfer-bench.example"], actor=actor,
        )
        async with db.tenant_transaction(org.id):
            root = await Unit.get(parent_id=None)
            boss = await create_member(NewMember(email="boss@transfer-bench.example", name="Boss",
                                                 unit_id=root.id, status=MemberStatus.ACTIVE), actor=actor)
            leaving = [
                await create_member(NewMember(email=f"leaver{i}@transfer-bench.example",
                                              name=f"Leaver {i}", unit_id=root.id, status=MemberStatus.ACTIVE,
                                              manager_id=boss.id), actor=actor)
                for i in range(leavers)
            ]
            product = await products.create_product("drive", "Drive", "", actor=actor)
            _, token = await tokens.create_token("bench", [p.value for p in Permission],
                                                 expires_in=None, actor=actor)
    return org.id, boss.id, [m.id for m in leaving], product.id, token


async def load_items(bench: BenchDatabase, org: uuid.UUID, member: uuid.UUID, product: uuid.UUID,
                     count: int) -> None:
    conn = await connect(bench.admin_url)
    try:
        with progress() as bar:
            task = bar.add_task("loading content items", total=count)
            for start in range(0, count, LOAD_CHUNK):
                n = min(LOAD_CHUNK, count - start)
                await conn.execute(
                    "INSERT INTO content_items (id, tenant_id, member_id, product_id, external_id, "
                    "title, kind, size, legal_hold, status, transfer_count, created_at, updated_at) "
                    "SELECT gen_random_uuid(), $1, $2, $3, 'doc-' || g, 'Document ' || g, "
                    "'organisation', 1000 + g % 5000, false, 'active', 0, now(), now() "
                    "FROM generate_series($4::int, $5::int) AS g",
                    org, member, product, start + 1, start + n)
                bar.advance(task, n)
        await conn.execute("VACUUM ANALYZE content_items")
    finally:
        await conn.close()


async def raw_update(bench: BenchDatabase, org: uuid.UUID, leaver: uuid.UUID, boss: uuid.UUID) -> float:
    """The baseline, as the runtime role in a tenant transaction."""
    conn = await connect(bench.urls.app)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org))
            await conn.execute(
                "UPDATE content_items SET member_id = $2, previous_member_id = member_id, "
                "transfer_count = transfer_count + 1, status = 'active', updated_at = now() "
                "WHERE tenant_id = $1 AND member_id = $3 AND status = 'active'", org, boss, leaver)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return elapsed


async def give_items_to(bench: BenchDatabase, leaver: uuid.UUID) -> None:
    """Every item back in ``leaver``'s hands, never transferred, and the table vacuumed:
    each timed run, workflow or raw, starts from an equal table."""
    admin = await connect(bench.admin_url)
    try:
        await admin.execute(
            "UPDATE content_items SET member_id = $1, previous_member_id = NULL, transfer_count = 0, "
            "status = 'active'", leaver)
        await admin.execute("VACUUM ANALYZE content_items")
    finally:
        await admin.close()


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def workflow(bench: BenchDatabase, org: uuid.UUID, leaver: uuid.UUID, count: int,
                   workdir: Path) -> tuple[float, float, tuple[int, int, int]]:
    """(transfer step seconds, wall seconds incl. worker start, RSS KiB at start/max/peak)."""
    from app.runtime import orm
    from tenants import db
    from tenants.actors import system_actor
    from tenants.departures import service

    async with orm(bench.urls, pool_size=2), db.tenant_transaction(org):
        departure = await service.start_departure(
            leaver, last_day=datetime.now(UTC).date(), successor_id=None, reason="bench",
            actor=system_actor("bench"))
    admin = await connect(bench.admin_url)
    log = workdir / "worker.log"
    try:
        # This departure's steps are due now (earlier rounds' later steps stay where they are).
        await admin.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued' AND key LIKE $1",
                            f"%{departure.id}%")
        started = time.perf_counter()
        worker = spawn_tenantry(["worker", "--concurrency", "2"], bench, workdir, log)
        first_rss = 0
        max_rss = 0
        try:
            with progress() as bar:
                task = bar.add_task("transfer through the workflow", total=count)
                while True:
                    if worker.poll() is not None:
                        raise RuntimeError(f"the worker exited:\n{log.read_text()[-3000:]}")
                    current, _ = rss_kib(worker.pid)
                    step = await admin.fetchrow(
                        "SELECT status, done, started_at, finished_at FROM departure_steps "
                        "WHERE departure_id = $1 AND name = 'transfer'", departure.id)
                    assert step is not None
                    if step["status"] != "pending":
                        # Memory from the first batch on: flat means it does not grow with it.
                        first_rss = first_rss or current
                        max_rss = max(max_rss, current)
                    bar.update(task, completed=step["done"])
                    if step["status"] == "done":
                        break
                    await asyncio.sleep(0.1)
            wall = time.perf_counter() - started
            _, peak = rss_kib(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        moved = await admin.fetchval(
            "SELECT count(*) FROM content_items WHERE transfer_count = 1 AND member_id <> $1", leaver)
        if moved != count:
            raise RuntimeError(f"{moved} of {count} items moved exactly once")
        seconds = (step["finished_at"] - step["started_at"]).total_seconds()
    finally:
        await admin.close()
    return seconds, wall, (first_rss, max_rss, peak)


@dataclass(frozen=True, slots=True)
class Served:
    """A ``tenantry serve`` process, its address and its log."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path


@contextmanager
def serving(bench: BenchDatabase, workdir: Path) -> Iterator[Served]:
    """``tenantry serve`` (no embedded worker) on the bench database for the block, started
    at once and not waited for (``ingest`` does): its start-up, seconds of imports, overlaps
    the loading; idle until then, it does no work of its own."""
    port = free_port()
    log = workdir / "serve.log"
    server = spawn_tenantry(["serve", "--no-migrate", "--port", str(port)], bench, workdir, log)
    try:
        yield Served(server, f"http://127.0.0.1:{port}", log)
    finally:
        server.terminate()
        server.wait(timeout=30)


async def ingest(served: Served, token: str, product: uuid.UUID, member: uuid.UUID, count: int) -> float:
    """Items per second registered through ``POST /v1/content/bulk`` on a real server."""
    await wait_for_http(served.url, "/healthz", served.process, "tenantry serve",
                        lambda: served.log.read_text(errors="replace")[-3000:])
    bodies = []
    for start in range(0, count, INGEST_BATCH):
        lines = [
            orjson.dumps({"product_id": str(product), "member_id": str(member),
                          "external_id": f"ingest-{i}", "title": f"Mail {i}",
                          "kind": "personal" if i % 10 == 0 else "organisation",
                          "size": 2048 + i % 999})
            for i in range(start, min(count, start + INGEST_BATCH))
        ]
        bodies.append(b"\n".join(lines) + b"\n")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=served.url, timeout=600, headers=headers) as client:
        started = time.perf_counter()
        for body in bodies:
            response = await client.post("/v1/content/bulk", content=body)
            if response.status_code != 200:
                raise RuntimeError(f"bulk upload: {response.status_code} {response.text[:500]}")
        elapsed = time.perf_counter() - started
    return count / elapsed


async def main() -> None:
    args = parse_args(__doc__ or "")
    count = 10_000 if args.quick else 1_000_000
    ingest_count = 5_000 if args.quick else 200_000
    rounds = 1 if args.quick else 3
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-transfer-"))
    raws: list[float] = []
    steps: list[float] = []
    try:
        with server_url() as server:
            console.print(await server_facts(server))
            async with bench_database(server) as bench:
                # One leaver per round, plus one for the warm-up of both sides.
                org, boss, leavers, product, token = await setup_org(bench, rounds + 1)
                # The registry's server starts now, so that its start-up overlaps the loading.
                with serving(bench, workdir) as registry:
                    await load_items(bench, org, leavers[0], product, count)
                    for index, leaver in enumerate(leavers):
                        warm = index == 0
                        label = "warm-up" if warm else f"round {index}"
                        # Alternate which side runs first, each on the same freshly reset table.
                        order = ("raw", "workflow") if index % 2 else ("workflow", "raw")
                        for side in order:
                            await give_items_to(bench, leaver)
                            if side == "raw":
                                raw = await raw_update(bench, org, leaver, boss)
                                console.print(f"{label}: raw UPDATE of {count:,} rows: {raw:.2f} s")
                                if not warm:
                                    raws.append(raw)
                                continue
                            step, wall, (first, top, peak) = await workflow(bench, org, leaver, count, workdir)
                            console.print(f"{label}: workflow transfer step: {step:.2f} s "
                                          f"({count / step:,.0f} items/s; {wall:.2f} s including worker start)")
                            console.print(f"  worker RSS: {first / 1024:.0f} MiB at the first batch, "
                                          f"{top / 1024:.0f} MiB at most while transferring, "
                                          f"peak (VmHWM) {peak / 1024:.0f} MiB")
                            if not warm:
                                steps.append(step)
                    rate = await ingest(registry, token, product, boss, ingest_count)
                    console.print(f"NDJSON registry ingest: {rate:,.0f} items/s "
                                  f"({ingest_count:,} items in requests of up to {INGEST_BATCH:,})")
                    console.print(machine_load())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    value = statistics.median(steps) / statistics.median(raws)
    console.print(f"median of {len(steps)} rounds: workflow {statistics.median(steps):.2f} s, "
                  f"raw {statistics.median(raws):.2f} s (after a warm-up of both)")
    mark = "[green]met[/green]" if meets(value, "<=", GOAL) else "[red]missed[/red]"
    console.print(f"transfer_vs_raw_update {mark}")
    print(f"peak_worker_rss_mib = {peak / 1024:.0f}")
    print(ratio_line("transfer_vs_raw_update", value, "<=", GOAL))


if __name__ == "__main__":
    asyncio.run(main())
