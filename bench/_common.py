"""Plumbing shared by the benchmarks: a throwaway database, the app served in its own
process, load-generator rounds, progress bars, statistics and the final ``ratio`` lines.

Every benchmark compares two variants measured in the same run, on the same server and
data, so machine speed cancels out of the ratio; this module keeps that setup identical
between scripts and keeps the scripts themselves about what they measure.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp

#: The runtime login role the service uses by default (see app/settings.py).
APP_ROLE = "tenantry_app"

#: Wide enough that a result line is not wrapped when the output goes to a file or a pipe.
console = Console(highlight=False, width=120)


def argument_parser(description: str, *, serves: bool = False, loads: bool = False) -> argparse.ArgumentParser:
    """``--quick`` for a run of a few seconds (smoke test), otherwise the full benchmark, and
    ``--seed``. ``serves``: the hidden ``--serve CONFIG`` of the script's app process (see
    ``AppServer``). ``loads``: ``--connections`` and ``--client`` of the load generator, and
    the hidden ``--load CONFIG`` of the script's own httpx load generator."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small data and few rounds: a smoke test of the script")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed (same for both variants)")
    if loads:
        parser.add_argument("--connections", type=int, default=32, help="concurrent connections of the load generator")
        parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                            help="load generator (auto: wrk when on PATH)")
        parser.add_argument("--load", metavar="CONFIG", help=argparse.SUPPRESS)
    if serves:
        parser.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    return parser


def parse_args(description: str) -> argparse.Namespace:
    """The arguments of a benchmark that takes only ``--quick`` and ``--seed``."""
    return argument_parser(description).parse_args()


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
    product does it (roles, grants, RLS), dropped afterwards even on failure. It is copied
    from a migrated template kept on the server (one per state of ``migrations/``), so a
    run does not spend seconds migrating what the last run already migrated."""
    name = f"tenantry_bench_{secrets.token_hex(4)}"
    server_admin = database.with_database(server, "postgres")
    admin_url = database.with_database(server, name)
    started = time.perf_counter()
    try:
        template = await migrated_template(server)
        await _copy_database(server_admin, template, name)
        urls = await database.prepare_database(admin_url, app_role=APP_ROLE, app_database_url=None)
        await database.migrate(urls)  # nothing left to apply: the template is current
        console.print(f"database {name} prepared and migrated in {time.perf_counter() - started:.1f} s"
                      f" (from the template {template})")
        yield BenchDatabase(name, admin_url, urls, server_admin)
    finally:
        conn = await connect(server_admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


#: Held while a template is made, so benchmarks started together make it once.
TEMPLATE_LOCK = 0x7E4A_B7C4


def migrations_digest() -> str:
    """What the migrations on disk are: a template made from other ones is not reused."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


async def migrated_template(server: str) -> str:
    """The name of a database migrated to the migrations on disk and marked as a template,
    made (under an advisory lock) when the server has none yet."""
    name = f"tenantry_bench_tpl_{migrations_digest()}"
    conn = await connect(database.with_database(server, "postgres"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
        ready = await conn.fetchval(
            "SELECT datistemplate FROM pg_database WHERE datname = $1", name
        )
        if not ready:  # missing, or left half-made by a run that was stopped
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            urls = await database.prepare_database(
                database.with_database(server, name), app_role=APP_ROLE, app_database_url=None
            )
            await database.migrate(urls)
            await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)
        await conn.close()
    return name


async def _copy_database(server_admin: str, template: str, name: str) -> None:
    """``CREATE DATABASE name TEMPLATE template``; retried while another run's copy (or a
    closing connection of the template's migration) still holds the template."""
    conn = await connect(server_admin)
    try:
        for attempt in range(50):
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
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


#: Rows to load into a table: (table, its columns, the rows).
TableRows = tuple[str, Sequence[str], Sequence[tuple[Any, ...]]]


async def copy_rows(conn: asyncpg.Connection, tables: Sequence[TableRows]) -> None:
    """COPY each table's rows over ``conn`` (as its role: the superuser's bypasses row-level
    security), with a progress bar; inside the caller's transaction when it opened one."""
    with progress() as bar:
        task = bar.add_task("rows (COPY)", total=sum(len(rows) for _, _, rows in tables))
        for table, columns, rows in tables:
            await conn.copy_records_to_table(table, records=rows, columns=list(columns))
            bar.advance(task, len(rows))


class BenchmarkFailed(SystemExit):
    """The measured route answered errors or wrote nothing: no figure is printed, and the
    script exits non-zero (so a broken benchmark fails CI instead of flattering)."""


def fail(message: str) -> BenchmarkFailed:
    """Print ``message`` and return the exit to raise: ``raise fail("...")``."""
    console.print(f"[red]benchmark failed: {message}[/]")
    return BenchmarkFailed(f"benchmark failed: {message}")


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


#: A benchmark's figures: (name, value, ``>=`` or ``<=``, target).
Figures = Sequence[tuple[str, float, str, float]]


def report(figures: Figures, *, started: float, quick: bool, notes: Sequence[str] = ()) -> None:
    """The end of a benchmark's output: how long it took and the machine's load, a line per
    goal missed, ``notes`` as plain lines, and last the ``ratio`` lines (what is read by
    machine), flushed."""
    console.print(f"finished in {time.perf_counter() - started:.1f} s ({'quick' if quick else 'full'} mode); "
                  f"at the end: {machine_load()} ({datetime.now(UTC):%H:%M:%S} UTC)")
    for name, value, op, target in figures:
        if not meets(value, op, target):
            console.print(f"{name}: goal missed (see bench/README.md)")
    for note in notes:
        print(note, flush=True)
    for name, value, op, target in figures:
        print(ratio_line(name, value, op, target), flush=True)


#: The end of every wrk script of ours: prints one JSON summary line prefixed "BENCH" (read
#: by ``parse_bench_line``).
WRK_SUMMARY = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "status_errors": %d, ' ..
    '"socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""

#: wrk script shared by the HTTP benchmarks: GETs the paths listed in $BENCH_PATHS in turn
#: with $BENCH_TOKEN as bearer, and prints the summary line.
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
""" + WRK_SUMMARY


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


# --- the app in its own process ---------------------------------------------------------------
#
# A script serves the app from a child process running the script itself with ``--serve
# CONFIG`` (``AppServer`` starts it); the child calls ``serve`` (or, for hooks of its own,
# ``served_app`` and ``run_server``) with the configuration ``AppServer`` wrote.

#: The secret key of every served app (nothing it signs outlives the run).
SECRET_KEY = "bench-secret-" + "k" * 40
CLK_TCK = os.sysconf("SC_CLK_TCK")


def spawn_tenantry(
    args: list[str], bench: BenchDatabase, workdir: Path, log: Path
) -> subprocess.Popen[bytes]:
    """``tenantry ARGS`` on the bench database (a web node has no embedded worker), its
    output appended to ``log``."""
    env = {**os.environ, "DATABASE_URL": bench.urls.admin, "APP_DATABASE_URL": bench.urls.app,
           "TENANTRY_SECRET_KEY": SECRET_KEY, "TENANTRY_DATA_DIR": str(workdir),
           "TENANTRY_EMBEDDED_WORKER": "false", "LOG_FORMAT": "console"}
    found = shutil.which("tenantry")
    command = [found] if found else [sys.executable, "-m", "app.cli"]
    with log.open("ab") as out:
        return subprocess.Popen([*command, *args], env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    """A ``tenantry worker`` process started by ``worker_process``, and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    async def started(self, within: float = 60.0) -> None:
        """Until the worker logs that it runs (its audit sealer runs by then: it is started
        first), for a measurement that must not begin before the worker does; RuntimeError
        with its log if the process exits or ``within`` seconds pass first."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if any("worker" in line and line.rstrip().endswith(" started") for line in text.splitlines()):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{text[-3000:]}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the worker did not start within {within:.0f} s:\n"
                           f"{self.log.read_text(errors='replace')[-3000:]}")


@contextmanager
def worker_process(bench: BenchDatabase) -> Iterator[WorkerProcess]:
    """``tenantry worker`` on the bench database for the duration of the block, as a
    deployment runs one beside its web nodes (its sealer chains the events they record as
    they come); stopped with SIGTERM after. RuntimeError, with its log, if it is not running
    at the end."""
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-worker-") as work:
        log = Path(work) / "worker.log"
        worker = spawn_tenantry(["worker"], bench, Path(work), log)
        try:
            yield WorkerProcess(worker, log)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited during the run:\n{log.read_text()[-3000:]}")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` has used so far, from /proc; OSError
    when there is no such process."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / CLK_TCK


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine so far (the server's work for
    the app; other databases' work when the machine is shared lands here too), those that
    have exited included: a backend that exits is reaped by its postmaster, whose
    children's time (``cutime``, ``cstime``) then holds its seconds, so a connection closed
    between two readings does not take its work with it (the difference was negative)."""
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        if "(postgres)" in text[:64]:
            stats[int(stat.parent.name)] = text.rsplit(")", 1)[1].split()
    total = 0
    for fields_ in stats.values():
        total += int(fields_[11]) + int(fields_[12])
        if int(fields_[1]) not in stats:  # a postmaster: add its reaped children
            total += int(fields_[13]) + int(fields_[14])
    return total / CLK_TCK


@dataclass(frozen=True, slots=True)
class ExtraRoute:
    """A route a benchmark adds to the served app: right before the app's route at ``before``
    (so it pays the same middleware and the same routing as that route), or first when
    ``before`` is None."""

    route: BaseRoute
    before: str | None = None


def served_app(cfg: dict[str, Any], *, authenticator: Any = None, **settings: Any) -> Starlette:
    """The app as ``tenantry serve`` builds it (``create_app``, JSON access logs to stderr)
    from the configuration ``AppServer`` wrote; ``settings`` override ``Settings`` fields
    (``embedded_worker=False``, ``pool_size=…``)."""
    from app.factory import create_app
    from app.logs import configure_logging
    from app.settings import Settings

    values = Settings(secret_key=cfg["secret_key"], public_url=cfg["public_url"], host="127.0.0.1",
                      port=cfg["port"], data_dir=Path(cfg["data_dir"]), log_json=True, **settings)
    configure_logging(values.log_level, json_lines=True)
    return create_app(values, DatabaseUrls(admin=cfg["admin_url"], app=cfg["app_url"]),
                      authenticator=authenticator)


def add_routes(app: Starlette, routes: Sequence[ExtraRoute]) -> None:
    """Insert ``routes`` into the app's router; KeyError naming the path of a ``before``
    route the app does not have."""
    table = app.router.routes
    for extra in routes:
        if extra.before is None:
            table.insert(0, extra.route)
            continue
        at = next((i for i, r in enumerate(table) if getattr(r, "path", None) == extra.before), None)
        if at is None:
            raise KeyError(f"the app has no route {extra.before}")
        table.insert(at, extra.route)


def run_server(app: ASGIApp, port: int) -> None:
    """Serve ``app`` as ``tenantry serve`` does: one uvicorn worker on 127.0.0.1, the app's
    own logging, X-Forwarded-For trusted from the loopback; returns when it is stopped."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, proxy_headers=True, server_header=False)


def serve(
    config_path: str,
    *,
    routes: Callable[[Starlette, dict[str, Any]], Sequence[ExtraRoute]] | None = None,
    **settings: Any,
) -> None:
    """``--serve``: the app of ``served_app``, plus the routes ``routes(app, config)`` gives."""
    cfg = json.loads(Path(config_path).read_text())
    app = served_app(cfg, **settings)
    if routes is not None:
        add_routes(app, routes(app, cfg))
    run_server(app, cfg["port"])


class AppServer:
    """One app process: ``python SCRIPT --serve CONFIG`` from the checkout, its output in
    ``WORKDIR/NAME.log``. ``config`` adds entries to the configuration it writes (read back
    by the script's ``--serve``); ``ready_path`` answers 200 once it serves."""

    def __init__(
        self,
        script: Path,
        workdir: Path,
        urls: DatabaseUrls,
        *,
        name: str = "server",
        port: int | None = None,
        secret_key: str = SECRET_KEY,
        ready_path: str = "/healthz",
        config: dict[str, Any] | None = None,
    ) -> None:
        self.script = script
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        self.log_path = workdir / f"{name}.log"
        self.config_path = workdir / f"{name}.json"
        self.config_path.write_text(json.dumps({
            "secret_key": secret_key, "public_url": self.url, "port": self.port,
            "data_dir": str(workdir / f"{name}-data"), "admin_url": urls.admin, "app_url": urls.app,
            **(config or {}),
        }))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the app server was not started"
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(self.script), "--serve", str(self.config_path)],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, within: float = 60.0) -> None:
        """Until ``ready_path`` answers 200; RuntimeError with the log's tail if the process
        exits or ``within`` seconds pass first."""
        assert self.process is not None, "the app server was not started"
        await wait_for_http(self.url, self.ready_path, self.process, f"the app server {self.name}",
                            self.log_tail, within)

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def errors_logged(self) -> list[str]:
        """The log's lines at error level, with a 5xx status (the access log is JSON lines)
        or from a traceback, each cut at 300 characters."""
        found = []
        try:
            with self.log_path.open(errors="replace") as log:
                for line in log:
                    if '"level": "error"' in line or '"status": 5' in line or "Traceback" in line:
                        found.append(line.strip()[:300])
        except OSError:
            pass
        return found

    def stop(self) -> None:
        """Terminate the process (killed after 10 s); nothing when it is not running."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


async def api_token(urls: DatabaseUrls, org_id: uuid.UUID,
                    scopes: Sequence[str] = ("products:write", "products:read")) -> str:
    """An administrator's API token of the organisation, made by the product's service (to
    register products and their clients through the API)."""
    from app.runtime import orm
    from tenants import db
    from tenants.actors import system_actor
    from tenants.ids import OrgId
    from tenants.tokens import service as tokens

    async with orm(urls, pool_size=1), db.tenant_transaction(OrgId(org_id)):
        _, text = await tokens.create_token("bench", list(scopes), expires_in=None, actor=system_actor("bench"))
    return text


async def product_token(url: str, admin_token: str, scopes: Sequence[str],
                        product_id: uuid.UUID | None = None) -> tuple[dict[str, Any], str]:
    """A client of a product with ``scopes``, registered through the API of the app at
    ``url`` (of a new product "Bench" when ``product_id`` is None): the registration (with
    ``client_id`` and ``client_secret``, for ``fresh_token``) and a token of the client."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=10,
                                 headers={"Authorization": f"Bearer {admin_token}"}) as client:
        if product_id is None:
            product = await client.post("/v1/products", json={"key": f"bench{uuid.uuid4().hex[:6]}",
                                                              "name": "Bench"})
            product.raise_for_status()
            product_id = uuid.UUID(product.json()["id"])
        registered = await client.post(f"/v1/products/{product_id}/clients",
                                       json={"name": "bench", "scopes": list(scopes)})
        registered.raise_for_status()
    client_info = dict(registered.json())
    return client_info, await fresh_token(url, client_info)


async def fresh_token(url: str, client_info: dict[str, Any]) -> str:
    """A new client-credentials access token for the client ``product_token`` registered."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        issued = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                   auth=(client_info["client_id"], client_info["client_secret"]))
        issued.raise_for_status()
    return str(issued.json()["access_token"])


# --- load-generator rounds --------------------------------------------------------------------


def load_generator(choice: str) -> str:
    """``wrk`` or ``httpx`` for a ``--client`` choice (``auto``: wrk when on PATH)."""
    return choice if choice != "auto" else ("wrk" if shutil.which("wrk") else "httpx")


def wrk_argv(script: Path, url: str, *, connections: int, seconds: float) -> list[str]:
    """The ``wrk`` command of one round: one thread, ``connections`` connections, for
    ``seconds`` rounded to whole seconds (at least one). wrk reads no fraction of a second:
    ``-d0.2s`` makes it print its usage and exit without a result."""
    return ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), url]


def parse_bench_line(text: str) -> dict[str, Any]:
    """The summary of the ``BENCH {…}`` line a load generator printed (``WRK_SCRIPT``'s or
    ``bench_line``'s); RuntimeError with the output's tail when there is none."""
    line = next((x for x in text.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"the load generator gave no result:\n{text[-2000:]}")
    return dict(json.loads(line.removeprefix("BENCH ")))


def bench_line(data: dict[str, int]) -> str:
    """The summary line ``WRK_SCRIPT`` prints, for a load generator of our own."""
    return "BENCH " + json.dumps(data)


async def httpx_load(
    url: str,
    send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    *,
    seconds: float,
    connections: int,
    headers: dict[str, str],
) -> dict[str, int]:
    """``connections`` workers sharing one httpx client send requests for ``seconds`` (at
    most 50,000 a second in all, so the loop is bounded): ``send(client, n)`` sends the n-th.
    The summary ``WRK_SCRIPT`` prints: requests, duration, p50 and p99 (µs), answers other
    than 200 as status errors."""
    import httpx

    latencies: list[float] = []
    errors = counter = 0
    limit = int(seconds * 50_000)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal counter, errors
            while counter < limit and time.perf_counter() < deadline:
                n = counter
                counter += 1
                started = time.perf_counter()
                response = await send(client, n)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = time.perf_counter() - started
    return {
        "requests": len(latencies), "duration_us": int(wall * 1e6),
        "p50_us": int(percentile(latencies, 50) * 1e6), "p99_us": int(percentile(latencies, 99) * 1e6),
        "status_errors": errors, "socket_errors": 0,
    }


async def timed_round(argv: Sequence[str], env: dict[str, str], server_pid: int) -> Round:
    """Run one load generator (``argv``, ``env`` added to ours) to its end: its summary
    line, and the CPU the app process ``server_pid`` used meanwhile."""
    cpu_before = process_cpu(server_pid)
    process = await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    cpu = process_cpu(server_pid) - cpu_before
    return Round.parse(out.decode(errors="replace"), cpu)


@dataclass(slots=True)
class Round:
    """One timed round of a load generator against the app server."""

    requests: int
    seconds: float
    p50: float
    p99: float
    errors: int
    #: CPU seconds the app process used during the round.
    server_cpu: float

    @classmethod
    def parse(cls, output: str, server_cpu: float) -> Round:
        data = parse_bench_line(output)
        return cls(data["requests"], data["duration_us"] / 1e6, data["p50_us"] / 1e6, data["p99_us"] / 1e6,
                   data["status_errors"] + data["socket_errors"], server_cpu)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class Variant:
    """What one variant's rounds add up to."""

    name: str
    paths_file: Path
    rounds: list[Round] = field(default_factory=list)

    @property
    def rate(self) -> float:
        seconds = sum(r.seconds for r in self.rounds)
        return sum(r.requests for r in self.rounds) / seconds if seconds else 0.0

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.rounds))

    @property
    def cpu_per_request(self) -> float:
        return sum(r.server_cpu for r in self.rounds) / max(1, sum(r.requests for r in self.rounds))

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)
