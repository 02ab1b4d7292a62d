"""What the audit log costs a write, and whether one organisation's writes slow another's.

Two figures, each a ratio of two variants measured in this run on the same database:

- ``audit_write``: updates/s of ``update_member`` (a name change, audited, in its own
  tenant transaction as a request runs it) divided by updates/s of the same ORM update of
  the same rows in the same kind of transaction without the audit record. Goal >= 0.85.
  Beside it, for reading it, the run measures a **floor** (printed, no goal): the same
  ``update_member`` whose statement writes its event as a bare row of a table with only
  a primary key (``audit_floor``: no queue row, no secondary index, nothing to seal).
  No design that writes the event in the change's transaction costs less than that, so
  ``audit_write`` against the floor says how much of the audit's cost is the schema's and
  the sealing's, and how much is the event row and the audited path's Python themselves.
- ``audit_concurrency``: how audited writes add up over organisations (updates/s of 4
  organisations x N writers at once / of 1 organisation x N writers) relative to how the
  same writes without auditing add up in the same rounds (the machine's own scaling
  cancels out). A lock, hot row or sealer shared by all organisations lowers it; 1.0
  means the audit adds no contention across organisations. Goal >= 0.9.

Sealing is paid for in both figures. The sealer runs as a deployment runs it: in a
``tenantry worker`` process beside the writers (the writers' process stands for a web node,
which seals nothing), on the same two cores; and every round ends (inside its timing) only
once every event it wrote is sealed into its organisation's chain: what the worker has
not sealed yet is sealed by the writers' process (``seal_all(wait=True)``; a no-op for the
unaudited variants). The run fails if the worker sealed nothing. At the end the chains of
all organisations are verified.

Beside each variant's rate and latencies it prints the WAL the server wrote per update
(sealing included), the CPU each part of the deployment spent per update (the writers'
process, the worker and PostgreSQL on this machine) and what the service's connections
waited on: where the audited write's extra cost goes, not only how large it is.

Run: ``python bench/audit.py [--quick]`` (``BENCH_DATABASE_URL`` = a superuser URL to use a
server of your own; otherwise the embedded server in a temporary folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from _common import (
    APP_ROLE,
    BenchDatabase,
    bench_database,
    connect,
    console,
    machine_load,
    ms,
    parse_args,
    percentile,
    postgres_cpu,
    process_cpu,
    progress,
    report,
    server_facts,
    server_url,
    worker_process,
)

from app.runtime import orm
from migrations.rls import row_level_security
from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.audit.sealer import seal_all
from tenants.identity import changes as identity
from tenants.ids import OrgId
from tenants.members import service as members
from tenants.members.models import Member
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind


@dataclass(frozen=True, slots=True)
class Config:
    members_per_org: int
    #: audit_write: concurrent writers on one organisation, and the pool they share.
    writers: int
    pool_size: int
    #: audit_write: measured A/B pairs and updates per round.
    write_pairs: int
    write_ops: int
    #: audit_concurrency: writers per organisation, rounds, updates per org per round.
    orgs: int
    per_org_writers: int
    concurrency_rounds: int
    concurrency_ops: int
    warmup_ops: int


#: A smoke test: every variant and check of the full run, one round each. Its rounds are
#: shorter than the worker's sealer's idle second on a fast machine (400 updates in 0.2 s),
#: so the worker's part is made sure of at the warm-up's end (``warm_up``).
QUICK = Config(members_per_org=200, writers=8, pool_size=10, write_pairs=1, write_ops=400,
               orgs=4, per_org_writers=2, concurrency_rounds=1, concurrency_ops=30, warmup_ops=100)
# audit_concurrency: 1,000 updates per organisation and round, so that a round of one
# organisation alone lasts about a second: at 500 the figure spread over 0.84-0.99 between
# runs, at 1,000 over 0.887-0.894.
FULL = Config(members_per_org=2_000, writers=8, pool_size=10, write_pairs=8, write_ops=2_500,
              orgs=4, per_org_writers=2, concurrency_rounds=10, concurrency_ops=1_000,
              warmup_ops=2_000)


@dataclass(slots=True)
class Tally:
    """Updates done and wall time spent by one variant over all its rounds."""

    ops: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    #: WAL the server wrote during the rounds (the sealing of their events included).
    wal_bytes: int = 0
    #: CPU seconds spent during the rounds by the writers' process, the worker (which
    #: seals) and this machine's PostgreSQL processes (see ``CpuMeter``).
    cpu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def add(self, ops: int, seconds: float, latencies: Sequence[float]) -> None:
        self.ops += ops
        self.seconds += seconds
        self.latencies.extend(latencies)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def describe(self, label: str) -> str:
        return (
            f"{label:<30} {self.rate:7.1f} updates/s  p50 {ms(percentile(self.latencies, 50)):>8}"
            f"  p95 {ms(percentile(self.latencies, 95)):>8}  ({self.ops} updates,"
            f" {self.wal_bytes / max(self.ops, 1):,.0f} B of WAL each)"
        )

    def describe_cpu(self) -> str:
        each = [seconds / max(self.ops, 1) * 1e6 for seconds in self.cpu]
        return (f"CPU per update: writers' process {each[0]:,.0f} µs, worker {each[1]:,.0f} µs,"
                f" PostgreSQL {each[2]:,.0f} µs; {sum(each):,.0f} µs in all")


class CpuMeter:
    """CPU seconds used so far by the writers' process (this one), the worker and this
    machine's PostgreSQL processes: the audited write's extra cost split by where it is
    paid (the writers' Python, the sealing worker, the server). Summed over the three, it
    is what a machine running the deployment pays per update."""

    def __init__(self, worker_pid: int) -> None:
        self.worker_pid = worker_pid

    def read(self) -> tuple[float, float, float]:
        return time.process_time(), process_cpu(self.worker_pid), postgres_cpu()


#: One update: member id, the new name and the request's actor, run in its own tenant
#: transaction.
Update = Callable[[OrgId, uuid.UUID, str, Actor], Awaitable[None]]


def actor() -> Actor:
    """An API-token actor with a request id and client address, as an HTTP request has."""
    return Actor(ActorKind.API_TOKEN, "bench-token", "bench token",
                 request_id=uuid.uuid4().hex, client_addr="127.0.0.1")


#: record_change's statement as the product has it (``floor_update`` swaps it).
PRODUCT_SQL = audit.CHANGE_AND_RECORD_SQL


async def audited_update(org: OrgId, member_id: uuid.UUID, name: str, by: Actor) -> None:
    """The product path: ``update_member`` in its own tenant transaction."""
    audit.CHANGE_AND_RECORD_SQL = PRODUCT_SQL  # back from a floor round (see floor_update)
    async with db.tenant_transaction(org):
        await members.update_member(member_id, {"name": name}, actor=by)


async def unaudited_update(org: OrgId, member_id: uuid.UUID, name: str, by: Actor) -> None:
    """The baseline: the same locked read and ORM update of the same row, same transaction
    kind, and the same hook for the identity backend's mirror (not auditing: a change
    must reach Keycloak with or without an audit log), without the snapshot/diff and the
    audit record (no switch in the product). ``by`` is made for it all the same (see
    ``run_work``) and has nothing to be recorded in."""
    async with db.tenant_transaction(org):
        member = await members.get_member(member_id, for_update=True)
        member.name = name
        await member.save(update_fields=["name", "updated_at"])
        await identity.member_changed(member.id, "updated")


#: The floor's table: an audit event's columns, its key, the row-level security policy of
#: every tenant table, and nothing else (``create_floor_table``).
FLOOR_TABLE = "audit_floor"


async def create_floor_table(bench: BenchDatabase) -> None:
    conn = await connect(bench.admin_url)
    try:
        await conn.execute(f"""
            CREATE TABLE {FLOOR_TABLE} (LIKE audit_events INCLUDING DEFAULTS);
            ALTER TABLE {FLOOR_TABLE} ADD PRIMARY KEY (tenant_id, id);
            {row_level_security(FLOOR_TABLE)}
            GRANT SELECT, INSERT ON {FLOOR_TABLE} TO {APP_ROLE};
        """)
    finally:
        await conn.close()


#: update_member's own statement (tenants.audit.service.record_change), its event written
#: to the floor's table and not queued.
FLOOR_SQL = audit.CHANGE_AND_RECORD_SQL.replace(
    "INSERT INTO audit_events", f"INSERT INTO {FLOOR_TABLE}"
).replace(
    "INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded\n"
    "RETURNING event_id",
    "SELECT id AS event_id FROM recorded",
)
if "audit_pending" in FLOOR_SQL or FLOOR_TABLE not in FLOOR_SQL:
    raise RuntimeError("record_change's statement changed: the floor no longer derives from it")


async def floor_update(org: OrgId, member_id: uuid.UUID, name: str, by: Actor) -> None:
    """The product path, ``update_member`` with all its Python (snapshots, diff, sealed
    personal values, the one statement), its event a bare row: the least an event written
    in the change's transaction can cost.

    Every update of a floor round sets the floor's statement and every audited update the
    product's: rounds of different variants never overlap, so the writers of one round all
    set the same one. (Saving and restoring it around each update did not work: with eight
    writers interleaving, one restored what another had swapped in, and audited rounds
    ran with the floor's statement; ``audit_write`` now counts the events each variant
    wrote.)"""
    audit.CHANGE_AND_RECORD_SQL = FLOOR_SQL
    async with db.tenant_transaction(org):
        await members.update_member(member_id, {"name": name}, actor=by)


# --- data ------------------------------------------------------------------------------


async def create_orgs(count: int) -> list[OrgId]:
    """Organisations through the service (root unit, audit chain head, first events)."""
    made: list[OrgId] = []
    for _ in range(count):
        slug = f"bench-{uuid.uuid4().hex[:10]}"
        org = await organisations.create_organisation(
            slug=slug, name=slug, kind=OrganisationKind.EMPLOYER,
            domains=[f"{slug}.example"], actor=actor(),
        )
        made.append(OrgId(org.id))
    return made


async def load_members(bench: BenchDatabase, orgs: Sequence[OrgId], per_org: int) -> None:
    """Members (and their audit keys) with plain SQL as the superuser: loading is not what
    is measured here."""
    batch = 500
    conn = await connect(bench.admin_url)
    try:
        with progress() as bar:
            task = bar.add_task("members", total=len(orgs) * per_org)
            for org in orgs:
                root = await conn.fetchval(
                    "SELECT id FROM units WHERE tenant_id = $1 AND parent_id IS NULL", org
                )
                for start in range(0, per_org, batch):
                    count = min(batch, per_org - start)
                    await conn.execute(
                        """
                        INSERT INTO members (id, tenant_id, email, name, unit_id, roles, status,
                                             status_changed_at, created_at, updated_at)
                        SELECT gen_random_uuid(), $1, 'm' || g || '@bench.example', 'Member ' || g,
                               $2, '["member"]'::jsonb, 'active', now(), now(), now()
                          FROM generate_series($3::int, $4::int) AS g
                        """,
                        org, root, start, start + count - 1,
                    )
                    bar.advance(task, count)
            # Each member's audit key, as the product makes it with the member's first
            # event (member.created): without one, every member's first update in the run
            # would create it and the second read it back, a cost of loading, not of writing.
            await conn.execute(
                """
                INSERT INTO member_keys (id, tenant_id, member_id, key, created_at, updated_at)
                SELECT gen_random_uuid(), tenant_id, id,
                       decode(md5(random()::text) || md5(random()::text), 'hex'), now(), now()
                  FROM members WHERE tenant_id = ANY($1::uuid[])
                ON CONFLICT (tenant_id, member_id) DO NOTHING
                """,
                list(orgs),
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def member_ids(org: OrgId) -> list[uuid.UUID]:
    async with db.tenant_transaction(org):
        return sorted(await Member.all().values_list("id", flat=True))


# --- running ---------------------------------------------------------------------------


class WaitSampler:
    """Polls pg_stat_activity (every ``interval`` s, one admin connection) and counts what
    the service's connections are waiting on, per variant: evidence for *why* a variant
    is slower (``Lock/transactionid`` = queued behind another transaction's row lock,
    ``IO/WalSync`` = commit flush, ``Client/ClientRead`` = the server waits for Python)."""

    def __init__(self, url: str, role: str, interval: float = 0.01) -> None:
        self.url, self.role, self.interval = url, role, interval
        self.label: str | None = None
        self.counts: dict[str, dict[str, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WaitSampler:
        self._conn = await connect(self.url)
        self._wal_conn = await connect(self.url)  # read between rounds, beside the sampling
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._conn.close()
        await self._wal_conn.close()

    async def wal_position(self) -> int:
        """The server's WAL insert position in bytes (WAL written between two readings:
        the commit flushes of both variants are what the sampled WAL waits are)."""
        return int(await self._wal_conn.fetchval("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))

    async def _run(self) -> None:
        while True:
            label = self.label
            rows = await self._conn.fetch(
                "SELECT coalesce(wait_event_type || '/' || wait_event, 'running') AS w, count(*) AS n"
                " FROM pg_stat_activity WHERE usename = $1 AND state = 'active' GROUP BY 1",
                self.role,
            )
            if label is not None and label == self.label:
                bucket = self.counts.setdefault(label, {"samples": 0})
                bucket["samples"] += 1
                for row in rows:
                    bucket[row["w"]] = bucket.get(row["w"], 0) + row["n"]
            await asyncio.sleep(self.interval)

    def describe(self, label: str) -> str:
        bucket = dict(self.counts.get(label, {"samples": 0}))
        samples = bucket.pop("samples") or 1
        top = sorted(bucket.items(), key=lambda kv: -kv[1])[:4]
        return ", ".join(f"{k} {v / samples:.2f}" for k, v in top) or "nothing sampled"


@dataclass(frozen=True, slots=True)
class Work:
    """A fixed list of (member, new name) for one organisation, worked by N writers."""

    org: OrgId
    items: list[tuple[uuid.UUID, str]]
    writers: int


def work_for(org: OrgId, ids: Sequence[uuid.UUID], ops: int, rng: random.Random,
             writers: int) -> Work:
    """Random members of the organisation; the names are made unique per variant later."""
    return Work(org, [(rng.choice(ids), f"n{i}") for i in range(ops)], writers)


async def run_work(work: Work, update: Update, tag: str, latencies: list[float]) -> None:
    """``work.writers`` tasks pulling from one queue; each update timed end to end
    (transaction begin to commit), so a wait on the chain head lock shows in latency.
    Each update comes with its actor, made as the HTTP layer makes one for every request,
    audited or not (so both variants pay for it)."""
    queue = iter(work.items)

    async def writer() -> None:
        for member_id, name in queue:
            started = time.perf_counter()
            await update(work.org, member_id, f"{name}-{tag}", actor())
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(writer() for _ in range(work.writers)))


@dataclass(slots=True)
class Sealing:
    """What the rounds left for their ends (the worker sealed the rest as they ran)."""

    drained: int = 0
    largest_backlog: int = 0

    async def drain(self) -> None:
        """Seal what the round left, waiting for a pass under way: a round is done when
        its events are chained, so a sealer falling behind would show in the figure."""
        left = await seal_all(wait=True)
        self.drained += left
        self.largest_backlog = max(self.largest_backlog, left)

    def describe(self, events: int) -> str:
        """What the worker sealed of ``events`` (every event the run sealed)."""
        if self.drained >= events:
            raise RuntimeError("the worker sealed no event: the run did not measure the "
                               "deployment it stands for")
        return (f"sealer: the worker sealed {events - self.drained} of {events} events as they "
                f"came; {self.drained} were left for round ends (largest: {self.largest_backlog})")


async def run_round(works: Sequence[Work], update: Update, tag: str,
                    sealing: Sealing) -> tuple[int, float, list[float]]:
    """All ``works`` at once, then the sealing of their events; returns updates, wall
    seconds (writes and sealing) and per-update latencies."""
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(run_work(w, update, tag, latencies) for w in works))
    await sealing.drain()
    return sum(len(w.items) for w in works), time.perf_counter() - started, latencies


@dataclass(frozen=True, slots=True)
class Variant:
    """One thing to measure: an update function and, per round, the work to give it."""

    name: str
    update: Update
    works: Callable[[int], Sequence[Work]]


async def rotated_rounds(rounds: int, variants: Sequence[Variant], label: str, sealing: Sealing,
                         sampler: WaitSampler | None = None,
                         meter: CpuMeter | None = None) -> dict[str, Tally]:
    """Every round runs each variant once, the order rotated by one each round (A B, B A;
    or A B C D, B C D A, ...), so drift (table and index growth, checkpoints, autovacuum)
    falls on all variants alike and none always runs first or last."""
    tallies = {v.name: Tally() for v in variants}
    with progress() as bar:
        task = bar.add_task(label, total=rounds * len(variants))
        for i in range(rounds):
            shift = i % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                if sampler is not None:
                    sampler.label = variant.name
                    wal_before = await sampler.wal_position()
                cpu_before = meter.read() if meter is not None else None
                done = await run_round(variant.works(i), variant.update, f"{label}{i}{variant.name}",
                                       sealing)
                if meter is not None and cpu_before is not None:
                    spent = tallies[variant.name].cpu
                    for part, (after, before) in enumerate(zip(meter.read(), cpu_before, strict=True)):
                        spent[part] += after - before
                if sampler is not None:
                    sampler.label = None
                    tallies[variant.name].wal_bytes += await sampler.wal_position() - wal_before
                tallies[variant.name].add(*done)
                bar.advance(task)
    return tallies


# --- figures ---------------------------------------------------------------------------


async def audit_write(cfg: Config, bench: BenchDatabase, org: OrgId, ids: list[uuid.UUID],
                      rng: random.Random, sealing: Sealing, meter: CpuMeter) -> float:
    """Audited vs unaudited updates on one organisation, same writers, same members."""
    console.rule("audit_write")
    console.print(f"{cfg.writers} concurrent writers on one organisation ({len(ids)} members), "
                  f"pool of {cfg.pool_size}; {cfg.write_pairs} A/B pairs of {cfg.write_ops} updates")
    # The same members in the same order for both variants, round by round.
    works = [work_for(org, ids, cfg.write_ops, rng, cfg.writers) for _ in range(cfg.write_pairs)]
    variants = [Variant("audited", audited_update, lambda i: [works[i]]),
                Variant("floor", floor_update, lambda i: [works[i]]),
                Variant("unaudited", unaudited_update, lambda i: [works[i]])]
    written_before = await written_events(bench, org)
    async with WaitSampler(bench.admin_url, APP_ROLE) as sampler:
        t = await rotated_rounds(cfg.write_pairs, variants, "audit_write", sealing, sampler, meter)
    audit.CHANGE_AND_RECORD_SQL = PRODUCT_SQL
    written = [after - before for after, before
               in zip(await written_events(bench, org), written_before, strict=True)]
    if written != [t["audited"].ops, t["floor"].ops]:
        raise SystemExit(f"audit_write: the audited and floor variants wrote {written} events "
                         f"for {t['audited'].ops} and {t['floor'].ops} updates")
    for name, label in (("audited", "audited (update_member)"),
                        ("floor", "floor (event as a bare row)"),
                        ("unaudited", "unaudited (same ORM update)")):
        console.print(t[name].describe(label))
        console.print(f"  {t[name].describe_cpu()}")
    console.print("server connections by state, average per sample (pg_stat_activity):")
    for name in ("audited", "floor", "unaudited"):
        console.print(f"  {name + ':':<10} {sampler.describe(name)}")
    ratio = t["audited"].rate / t["unaudited"].rate
    floor = t["floor"].rate / t["unaudited"].rate
    console.print(f"audited / unaudited throughput = {ratio:.3f}")
    console.print(f"info: floor / unaudited = {floor:.3f} (no event written in the change's "
                  "transaction costs less)")
    console.print(f"info: audited / floor = {ratio / floor:.3f} (what the queue, the indexes and "
                  "sealing cost)")
    return ratio


async def written_events(bench: BenchDatabase, org: OrgId) -> tuple[int, int]:
    """How many ``member.updated`` events the organisation's log holds, and how many rows
    the floor's table: each variant must have written one per update, where it should."""
    conn = await connect(bench.admin_url)
    try:
        logged = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'member.updated'",
            org,
        )
        floor = await conn.fetchval(f"SELECT count(*) FROM {FLOOR_TABLE}")
    finally:
        await conn.close()
    return int(logged), int(floor)


async def audit_concurrency(cfg: Config, bench: BenchDatabase, orgs: list[OrgId],
                            ids: dict[OrgId, list[uuid.UUID]], rng: random.Random,
                            sealing: Sealing) -> float:
    """How audited writes scale from one organisation to several, relative to how the same
    writes without auditing scale on the same machine in the same rounds.

    ``together``: k organisations x n writers at once; ``alone``: one organisation x n
    writers (the organisation rotates between rounds). ``together / alone`` is how far
    writes of several organisations add up; the unaudited ``control`` pair gives what the
    machine and the rest of the write path allow. Anything of the audit path that all
    organisations share (a lock, a hot row, a sealer that serialises them) makes audited
    writes add up less than the control's, and lowers the figure; 1.0 = the audit adds no
    contention across organisations. (The earlier definition, k x n spread over
    organisations against k x n on one, could not see a lock shared by all of them: both
    sides queued on it alike.)
    """
    n, k = cfg.per_org_writers, len(orgs)
    console.rule("audit_concurrency")
    console.print(
        f"definition: (audited updates/s of {k} organisations x {n} writers at once / of 1 "
        f"organisation x {n} writers) / (the same two without auditing); 1.0 = organisations' "
        "audited writes add up as well as unaudited writes do"
    )
    rounds = [([work_for(o, ids[o], cfg.concurrency_ops, rng, n) for o in orgs],
               orgs[i % k]) for i in range(cfg.concurrency_rounds)]

    def together(i: int) -> list[Work]:
        return rounds[i][0]

    def alone(i: int) -> list[Work]:
        org = rounds[i][1]
        return [next(w for w in rounds[i][0] if w.org == org)]

    variants = [
        Variant("together", audited_update, together),
        Variant("alone", audited_update, alone),
        Variant("control_together", unaudited_update, together),
        Variant("control_alone", unaudited_update, alone),
    ]
    async with WaitSampler(bench.admin_url, APP_ROLE) as sampler:
        t = await rotated_rounds(cfg.concurrency_rounds, variants, "audit_concurrency", sealing,
                                 sampler)
    console.print(t["together"].describe(f"audited, {k} orgs x {n} writers"))
    console.print(t["alone"].describe(f"audited, 1 org x {n} writers"))
    console.print(t["control_together"].describe(f"unaudited, {k} orgs x {n} writers"))
    console.print(t["control_alone"].describe(f"unaudited, 1 org x {n} writers"))
    audited = t["together"].rate / t["alone"].rate
    control = t["control_together"].rate / t["control_alone"].rate
    console.print(f"info: {k} orgs / 1 org throughput: audited x{audited:.2f}, unaudited x{control:.2f}")
    console.print(f"  waits, {k} orgs x {n}: {sampler.describe('together')}")
    console.print(f"  waits, 1 org x {n}: {sampler.describe('alone')}")
    return audited / control


async def warm_up(cfg: Config, bench: BenchDatabase, orgs: list[OrgId],
                  ids: dict[OrgId, list[uuid.UUID]], rng: random.Random) -> None:
    """Fill caches, the pool and prepared statements for every variant before measuring,
    and leave the audited updates' events to the worker: the run goes on once it has
    sealed them, so a worker that does not seal stops the run here, whatever the rounds'
    length (their ends drain what the worker has not sealed yet)."""
    for update in (audited_update, floor_update, unaudited_update):
        works = [work_for(o, ids[o], cfg.warmup_ops // len(orgs), rng, cfg.writers // 2) for o in orgs]
        await asyncio.gather(*(run_work(w, update, "warm", []) for w in works))
    conn = await connect(bench.admin_url)
    try:
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT count(*) FROM audit_pending"):
            if time.monotonic() > deadline:
                raise SystemExit("the worker sealed none of the warm-up's events in 60 s")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def verify_chains(orgs: Sequence[OrgId]) -> int:
    """Every organisation's chain, sealed under load, must verify with nothing pending;
    returns how many events they hold together."""
    events = 0
    for org in orgs:
        async with db.tenant_transaction(org):
            result = await audit.verify()
        if not result.ok or result.pending:
            raise SystemExit(f"the audit chain of {org} does not verify: {result}")
        console.print(f"chain of {org}: intact, {result.checked} events, head at {result.head.seq}")
        events += result.head.seq
    return events


async def main_async(quick: bool, seed: int) -> list[tuple[str, float, str, float]]:
    cfg = QUICK if quick else FULL
    rng = random.Random(seed)
    pool = max(cfg.pool_size, cfg.orgs * cfg.per_org_writers + 2)
    with server_url() as server:
        console.print(await server_facts(server))
        console.print(f"at start: {machine_load()}")
        async with bench_database(server) as bench, orm(bench.urls, pool_size=pool):
            sealing = Sealing()
            with worker_process(bench) as worker:
                meter = CpuMeter(worker.pid)
                orgs = await create_orgs(cfg.orgs)
                await create_floor_table(bench)
                await load_members(bench, orgs, cfg.members_per_org)
                ids = {o: await member_ids(o) for o in orgs}
                # Not before the worker runs (it starts beside the loading): a short run could
                # otherwise end before its sealer's first pass, and measure no worker at all.
                await worker.started()
                await warm_up(cfg, bench, orgs, ids, rng)
                write_ratio = await audit_write(cfg, bench, orgs[0], ids[orgs[0]], rng, sealing, meter)
                conc_ratio = await audit_concurrency(cfg, bench, orgs, ids, rng, sealing)
            events = await verify_chains(orgs)
            console.rule("sealing")
            console.print(sealing.describe(events))
    return [
        ("audit_write", write_ratio, ">=", 0.85),
        ("audit_concurrency", conc_ratio, ">=", 0.9),
    ]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "audit benchmark")
    started = time.perf_counter()
    figures = asyncio.run(main_async(args.quick, args.seed))
    report(figures, started=started, quick=args.quick)


if __name__ == "__main__":
    main()
