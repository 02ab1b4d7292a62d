"""Plumbing shared by the benchmarks: a throwaway database, progress bars, statistics and
the final ``ratio`` line.

Every benchmark compares two variants measured in the same run, on the same server and
data, so machine speed cancels out of the ratio; this module keeps that setup identical
between scripts and keeps the scripts themselves about what they measure.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/x.py`` from a checkout without install
    sys.path.insert(0, str(ROOT))

from app import database  # noqa: E402
from app.database import DatabaseUrls  # noqa: E402

#: The runtime login role the service uses by default (see app/settings.py).
APP_ROLE = "tenantry_app"

#: Wide enough that a result line is not wrapped when the output goes to a file or a pipe.
console = Console(highlight=False, width=120)


def parse_args(description: str) -> argparse.Namespace:
    """``--quick`` for a run of a few seconds (smoke test), otherwise the full benchmark."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small data and few rounds (< 30 s)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed (same for both variants)")
    return parser.parse_args()


@contextmanager
def server_url() -> Iterator[str]:
    """An administrative URL of a server we may create databases and roles on.

    ``BENCH_DATABASE_URL`` when set (a superuser URL); otherwise the embedded server in a
    temporary folder, which is stopped at exit (its own atexit hook) and then removed (ours,
    registered first so that it runs last).
    """
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with database.embedded_server(folder) as url:
        yield url


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    name: str
    #: Superuser connection to the bench database (loads data, bypasses RLS).
    admin_url: str
    #: The product's own URLs: ``admin`` as above, ``app`` as ``tenantry_app``.
    urls: DatabaseUrls
    #: The server's ``postgres`` database, for creating/dropping databases and roles.
    server_admin_url: str


async def connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(**database.connection_params(url))


@asynccontextmanager
async def bench_database(server: str) -> AsyncIterator[BenchDatabase]:
    """A fresh database ``tenantry_bench_<random>`` prepared and migrated exactly as the
    product does it (roles, grants, RLS), dropped afterwards even on failure."""
    name = f"tenantry_bench_{secrets.token_hex(4)}"
    server_admin = database.with_database(server, "postgres")
    admin_url = database.with_database(server, name)
    started = time.perf_counter()
    try:
        urls = await database.prepare_database(admin_url, app_role=APP_ROLE, app_database_url=None)
        await database.migrate(urls)
        console.print(f"database {name} prepared and migrated in {time.perf_counter() - started:.1f} s")
        yield BenchDatabase(name, admin_url, urls, server_admin)
    finally:
        conn = await connect(server_admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def server_facts(url: str) -> str:
    """One line about the server, so a figure can be read against the setup it came from."""
    conn = await connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('server_version') AS v, current_setting('shared_buffers') AS sb,"
            " current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fs"
        )
    finally:
        await conn.close()
    assert row is not None
    return (
        f"PostgreSQL {row['v']}, shared_buffers={row['sb']}, synchronous_commit={row['sc']}, "
        f"fsync={row['fs']}, {os.cpu_count()} CPUs"
    )


def machine_load() -> str:
    """The load average: this machine may be shared (tests of other work running), which
    moves absolute numbers; the ratios are interleaved to survive it, but say so."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def progress() -> Progress:
    """A rich progress bar for data loading (transient lines would hide what was loaded)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def ratio_line(name: str, value: float, op: str, target: float) -> str:
    """The one machine-read line per figure: ``ratio NAME = VALUE (goal OP TARGET)``."""
    return f"ratio {name} = {value:.3f} (goal {op} {target:g})"


def meets(value: float, op: str, target: float) -> bool:
    return value >= target if op == ">=" else value <= target


#: wrk script shared by the HTTP benchmarks: GETs the paths listed in $BENCH_PATHS in turn
#: with $BENCH_TOKEN as bearer, and prints one JSON summary line prefixed "BENCH".
WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = 0
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[((counter - 1) % #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "status_errors": %d, ' ..
    '"socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""


async def wait_for_http(
    url: str, path: str, process: subprocess.Popen[bytes], describe: str, log_tail: Callable[[], str],
    within: float = 60.0,
) -> None:
    """Poll ``url + path`` until it answers 200; RuntimeError with the server's log tail if
    the process exits or ``within`` seconds pass first."""
    import httpx

    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{describe} exited:\n{log_tail()}")
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{describe} was not ready after {within:.0f} s:\n{log_tail()}")
