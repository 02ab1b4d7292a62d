"""Monthly partitions of the append-only, high-volume tables (migration 0022): made ahead
so an insert always finds its month, dropped once no organisation keeps anything in them.

- ``access_log`` by ``checked_at``, ``sign_ins`` by ``at``, ``webhook_deliveries`` by
  ``created_at``: one partition per calendar month in UTC (``<table>_pYYYYMM``), and a
  DEFAULT partition that catches a row whose month has no partition yet (the worker was
  down for longer than ``AHEAD_MONTHS``); creating that month's partition moves them in.
- ``ensure_partitions`` creates the current month's and the next ``AHEAD_MONTHS``
  partitions where missing; idempotent, serialised between workers in the database.
- ``drop_expired_partitions``: a month is over for good when it ended more than the
  longest period any organisation keeps that table's rows (its own retention setting, or
  the default). Each organisation that still has rows in it loses them in a transaction of
  its own, audited as ``retention.partition_dropped`` (the audit trail is per organisation:
  an organisation with no rows there had nothing removed and gets no event); then the
  empty partition is detached and dropped, which gives its disk space back at once.
  Usually the daily retention runs have emptied it already. A delivery still pending
  keeps its partition until it is settled.

The worker runs ``maintain_partitions`` at start and then daily (``tenantry worker``, and
``tenantry serve`` with the embedded worker).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections

from tenants import db
from tenants.actors import Actor, system_actor
from tenants.audit import service as audit
from tenants.ids import OrgId
from tenants.outages import Backoff, run_periodically
from tenants.privacy.retention import DEFAULTS

log = logging.getLogger(__name__)

#: Partitions made ahead of the current month.
AHEAD_MONTHS = 2
#: How often the worker makes partitions ahead and drops expired ones.
EVERY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    name: str
    #: The partition key.
    column: str
    #: The retention field (``tenants.privacy.retention.Retention``) of its rows.
    period: str
    #: What of a partition's rows may go (SQL condition), beside the range.
    removable: str = "TRUE"


TABLES: dict[str, PartitionedTable] = {
    t.name: t
    for t in (
        PartitionedTable("access_log", "checked_at", "access_log_days"),
        PartitionedTable("sign_ins", "at", "sign_in_days"),
        PartitionedTable("webhook_deliveries", "created_at", "webhook_delivery_days",
                         removable="status <> 'pending'"),
    )
}


@dataclass(frozen=True, slots=True)
class TimePartition:
    table: str
    name: str
    #: The month it holds: ``range_from`` inclusive, ``range_to`` exclusive.
    range_from: datetime
    range_to: datetime


@dataclass(frozen=True, slots=True)
class DroppedPartition:
    partition: TimePartition
    #: Rows removed per organisation that still had some (each audited).
    removed: dict[OrgId, int]


def is_expired(partition: TimePartition, longest_days: int, now: datetime) -> bool:
    """Whether every row ``partition`` can hold is older than ``longest_days`` at ``now``."""
    return partition.range_to <= now - timedelta(days=longest_days)


async def ensure_partitions(
    now: datetime | None = None, *, months_ahead: int = AHEAD_MONTHS
) -> list[str]:
    """Create the partitions of ``now``'s month and of the ``months_ahead`` after it that
    are missing; returns the names created (none when all are there)."""
    _, rows = await connections.get("default").execute_query(
        "SELECT p FROM ensure_time_partitions($1, $2) AS p",
        [now or datetime.now(UTC), months_ahead],
    )
    return [r["p"] for r in rows]


async def list_partitions() -> list[TimePartition]:
    """Every monthly partition, oldest first per table (not the DEFAULT ones)."""
    _, rows = await connections.get("default").execute_query(
        "SELECT parent, partition, range_from, range_to FROM time_partitions()"
    )
    return [TimePartition(r["parent"], r["partition"], r["range_from"], r["range_to"])
            for r in rows]


async def longest_retention_days(table: PartitionedTable) -> int:
    """The longest period (days) any organisation keeps ``table``'s rows."""
    _, rows = await connections.get("default").execute_query(
        "SELECT longest_retention_days($1, $2) AS days",
        [table.period, getattr(DEFAULTS, table.period)],
    )
    return int(rows[0]["days"])


async def drop_expired_partitions(
    now: datetime | None = None, *, actor: Actor | None = None
) -> list[DroppedPartition]:
    """Drop every partition whose month ended longer ago than any organisation keeps its
    rows (as of ``now``, default the clock), after removing each organisation's remaining
    rows in an audited transaction of its own; returns what was dropped."""
    when = now or datetime.now(UTC)
    who = actor or system_actor("retention")
    longest = {name: await longest_retention_days(t) for name, t in TABLES.items()}
    dropped: list[DroppedPartition] = []
    for partition in await list_partitions():
        if not is_expired(partition, longest[partition.table], when):
            continue
        removed = await _empty(partition, who)
        _, rows = await connections.get("default").execute_query(
            "SELECT drop_time_partition($1) AS dropped", [partition.name]
        )
        if rows[0]["dropped"]:
            log.info("dropped partition %s (%s to %s); rows removed per organisation: %s",
                     partition.name, partition.range_from.date(), partition.range_to.date(),
                     {str(k): v for k, v in removed.items()} or "none")
            dropped.append(DroppedPartition(partition, removed))
        else:
            log.warning("partition %s is past every retention period but still holds rows "
                        "(pending webhook deliveries); it stays until they are settled",
                        partition.name)
    return dropped


async def _empty(partition: TimePartition, actor: Actor) -> dict[OrgId, int]:
    """Remove what each organisation has left in ``partition``, one audited transaction
    per organisation; returns the counts."""
    table = TABLES[partition.table]
    _, holders = await connections.get("default").execute_query(
        "SELECT tenant_id FROM time_partition_tenants($1)", [partition.name]
    )
    removed: dict[OrgId, int] = {}
    for holder in holders:
        org = OrgId(holder["tenant_id"])
        async with db.tenant_transaction(org):
            count, _ = await db.connection().execute_query(
                # The table and its condition are constants of this module, never input.
                f"DELETE FROM {table.name} WHERE tenant_id = $1 AND {table.column} >= $2 "  # noqa: S608
                f"AND {table.column} < $3 AND {table.removable}",
                [org, partition.range_from, partition.range_to],
            )
            if not count:
                continue
            await audit.record(
                "retention.partition_dropped", "organisation", org, actor=actor,
                after={"table": table.name, "partition": partition.name,
                       "from": partition.range_from.isoformat(),
                       "to": partition.range_to.isoformat(), "removed": count},
            )
        removed[org] = count
    return removed


async def maintain_partitions(stop: asyncio.Event, *, every: timedelta = EVERY) -> None:
    """Make partitions ahead and drop expired ones now, then every ``every``, until
    ``stop`` is set (the worker runs this beside its jobs). A failure is tried again soon
    (a database restart costs seconds, not a day), the DEFAULT partitions taking the rows
    meanwhile."""

    async def upkeep() -> None:
        created = await ensure_partitions()
        if created:
            log.info("created partitions %s", ", ".join(created))
        await drop_expired_partitions()

    await run_periodically(
        "maintaining the time partitions",
        upkeep,
        stop,
        every=every.total_seconds(),
        backoff=Backoff(base=5.0, cap=300.0),
    )
