"""What sign-in and API authentication cost the service, measured against real servers.

Two figures, measured in this run on one database, each app a single uvicorn worker in its
own process (``python bench/signin.py --serve …``, started by this script), the load
generator in this process, everything on 127.0.0.1:

- ``callback_vs_bare_rp``: Tenantry's sign-in callbacks per app CPU-second (below) divided
  by those of a minimal authlib Starlette relying party (``bare_relying_party``: code
  exchange and ID-token validation only, no database) against the same provider in the
  same run. Goal >= 0.6: sessions, audit, member lookup and JIT admission together cost
  less than the protocol itself. An absolute figure swung 146-194 with the machine's load;
  the ratio does not. Tenantry's side: completed OpenID Connect callbacks (``GET /oidc/{slug}/callback``:
  login attempt consumed, code exchanged at the test provider, ID token checked, userinfo,
  member admitted, session opened and audited, session cookie set) per second per core of
  the app process. The test provider is the real npm ``oidc-provider``
  (tests/oidc/provider.mjs, ``npm ci --prefix tests/oidc``). Authorization codes are prepared
  untimed just before each timed round (``GET /login/{slug}``, ``POST /login/{slug}/sso``, the
  provider's login), because the provider's codes live 60 s. The figure is callbacks divided
  by the CPU seconds the app process used while serving them, i.e. the rate one fully busy
  core sustains; the provider's time is not in it (another process) and is measured from
  inside the app (its RelyingParty HTTP client is wrapped with a timing transport) and
  shown, with the wall-clock variant "callbacks / (wall - time the app only waited on the
  provider)".
- ``auth_overhead``: requests/s of ``GET /v1/members/{id}`` with a real API token
  (``BearerAuthenticator``) divided by requests/s of the same route on a second app built
  with ``create_app(..., authenticator=OpenAuthenticator)`` — an authenticator that checks
  nothing and gives the same organisation and every permission (it still opens the tenant
  transaction). Interleaved rounds of equal duration, the same request sequence, the same
  load generator (``wrk`` when installed, else an httpx client). Goal >= 0.9.

Run: ``python bench/signin.py [--quick] [--profile [cprofile|py-spy]] [--only callbacks|auth]``.
``BENCH_DATABASE_URL`` = a superuser URL of a server of your own, else the embedded server in
a temporary folder. ``--profile`` adds one profiled round per figure (not counted) and prints
where the app process's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.cookiejar
import json
import os
import pstats
import random
import re
import resource
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from _common import (
    CLK_TCK,
    ROOT,
    WRK_SCRIPT,
    AppServer,
    argument_parser,
    bench_database,
    console,
    fail,
    free_port,
    httpx_load,
    load_generator,
    ms,
    parse_bench_line,
    percentile,
    process_cpu,
    progress,
    report,
    run_server,
    served_app,
    server_facts,
    server_url,
    wrk_argv,
)

from tenants.actors import Actor, ActorKind  # _common puts the checkout on sys.path
from tenants.ids import OrgId
from tenants.permissions import Permission

SCRIPT = Path(__file__).resolve()

ALL_PERMISSIONS = frozenset(Permission)
CLIENT_ID = "tenantry-bench"
#: The bare relying party's client at the same provider.
BARE_CLIENT_ID = "bare-bench"
CLIENT_SECRET = "bench-client-secret-" + "s" * 24
#: oidc-provider's authorization codes live 60 s (AuthorizationCodeTTL): a batch must be
#: prepared and consumed well within it.
CODE_LIFETIME_S = 60.0


# --- configuration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    #: People at the provider, each with one app "browser" and one provider session.
    accounts: int
    #: Codes prepared then consumed per timed round, and the timed rounds.
    batch: int
    rounds: int
    callback_concurrency: int
    prep_threads: int
    #: auth_overhead: members to read, interleaved pairs, seconds per variant per round.
    api_members: int
    api_pairs: int
    api_seconds: float
    api_concurrency: int
    warmup_seconds: float


#: A smoke test: every server, round and figure of the full run, each round just long
#: enough to have something to count.
QUICK = Config(accounts=4, batch=10, rounds=1, callback_concurrency=8, prep_threads=4,
               api_members=20, api_pairs=1, api_seconds=0.3, api_concurrency=16, warmup_seconds=0.2)
#: Batches of 400 keep every code well inside its 60 s even at ~20 callbacks/s on a busy
#: machine. auth_overhead alternates many 1 s rounds (wrk's shortest) so that load from
#: other processes falls on both variants alike.
FULL = Config(accounts=40, batch=400, rounds=4, callback_concurrency=8, prep_threads=4,
              api_members=2_000, api_pairs=40, api_seconds=1.0, api_concurrency=16, warmup_seconds=2.0)


def parse_args() -> argparse.Namespace:
    parser = argument_parser(__doc__.split("\n\n")[0], serves=True)
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                        help="load generator for auth_overhead (auto: wrk when on PATH)")
    parser.add_argument("--userinfo", action="store_true",
                        help="the provider keeps email and name out of the ID token, so Tenantry also "
                             "calls userinfo on every callback (the bare relying party does not)")
    parser.add_argument("--profile", nargs="?", const="cprofile", choices=("cprofile", "py-spy"),
                        help="profile the app process during the first round of each figure and print where "
                             "its time goes: cprofile (default; CPU clock, in the app) or py-spy (sampling)")
    parser.add_argument("--only", choices=("callbacks", "auth"),
                        help="measure one figure only (for working on it; the full run measures both)")
    return parser.parse_args()


# --- the app server (runs in its own process: ``--serve``) -----------------------------


@dataclass(frozen=True, slots=True)
class OpenCredential:
    """What the open authenticator finds in every request: one organisation, all rights."""

    org_id: OrgId

    async def verify(self, request: Any) -> Any:
        from app.auth import Principal

        client = request.client.host if request.client else None
        actor = Actor(ActorKind.API_TOKEN, "bench-open", "benchmark: no authentication",
                      request_id=getattr(request.state, "request_id", None), client_addr=client)
        return Principal(self.org_id, ALL_PERMISSIONS, actor)


class OpenAuthenticator:
    """Authentication off: identifies every request as the same organisation, checks nothing.
    The route still opens the tenant transaction and calls ``verify`` inside it."""

    def __init__(self, org_id: OrgId) -> None:
        self.credential = OpenCredential(org_id)

    async def identify(self, request: Any) -> OpenCredential:
        return self.credential


class ServerStats:
    """Counters kept inside the app process (one event loop, so no locks).

    Time is split while a callback is in flight into *provider-only* (every in-flight
    callback is waiting on the identity provider) and *working* (at least one is not);
    ``idle`` is time with no callback in flight.
    """

    def __init__(self) -> None:
        self.callbacks_inflight = 0
        self.provider_inflight = 0
        self.reset()

    def reset(self) -> None:
        now = time.perf_counter()
        self.t0 = now
        self.last = now
        self.cpu0 = time.process_time()
        self.idle = self.provider_only = self.working = 0.0
        self.callbacks = 0
        self.callback_seconds = 0.0
        self.provider_calls: Counter[str] = Counter()
        self.provider_seconds: Counter[str] = Counter()
        self.provider_failures = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        elapsed = now - self.last
        self.last = now
        if self.callbacks_inflight == 0:
            self.idle += elapsed
        elif self.provider_inflight >= self.callbacks_inflight:
            self.provider_only += elapsed
        else:
            self.working += elapsed

    def callback_started(self) -> None:
        self._tick()
        self.callbacks_inflight += 1

    def callback_ended(self, seconds: float) -> None:
        self._tick()
        self.callbacks_inflight -= 1
        self.callbacks += 1
        self.callback_seconds += seconds

    def provider_started(self) -> None:
        self._tick()
        self.provider_inflight += 1

    def provider_ended(self, endpoint: str, seconds: float, ok: bool) -> None:
        self._tick()
        self.provider_inflight -= 1
        self.provider_calls[endpoint] += 1
        self.provider_seconds[endpoint] += seconds
        self.provider_failures += 0 if ok else 1

    def snapshot(self) -> dict[str, Any]:
        self._tick()
        return {
            "wall": time.perf_counter() - self.t0,
            "cpu": time.process_time() - self.cpu0,
            "idle": self.idle, "provider_only": self.provider_only, "working": self.working,
            "callbacks": self.callbacks, "callback_seconds": self.callback_seconds,
            "provider_calls": dict(self.provider_calls),
            "provider_seconds": dict(self.provider_seconds),
            "provider_failures": self.provider_failures,
            "threads": threading.active_count(),
        }


def _endpoint_name(path: str) -> str:
    for name in ("token", "userinfo", "me", "jwks", "openid-configuration"):
        if path.rstrip("/").endswith(name):
            return {"me": "userinfo", "openid-configuration": "discovery"}.get(name, name)
    return path


class TimingTransport(httpx.AsyncBaseTransport):
    """Wraps the RelyingParty's transport: time from sending a request to the provider to
    having its whole answer, per endpoint."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stats: ServerStats) -> None:
        self.inner = inner
        self.stats = stats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.stats.provider_started()
        started = time.perf_counter()
        ok = False
        try:
            response = await self.inner.handle_async_request(request)
            try:
                content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            finally:
                await response.aclose()
            ok = True
        finally:
            self.stats.provider_ended(_endpoint_name(request.url.path), time.perf_counter() - started, ok)
        return httpx.Response(response.status_code, headers=response.headers, content=content,
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()


class BenchASGI:
    """The app, plus ``/__bench/reset`` and ``/__bench/stats``, and callback accounting."""

    def __init__(self, app: Any, stats: ServerStats) -> None:
        self.app = app
        self.stats = stats
        self.profile: Any = None
        self.profile_path = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/__bench/"):
                from starlette.responses import JSONResponse

                if self.profile is not None:
                    self.profile.disable()
                    self.profile.dump_stats(self.profile_path)
                    self.profile = None
                if path == "/__bench/reset":
                    self.stats.reset()
                    query = dict(parse_qsl(scope.get("query_string", b"").decode()))
                    if query.get("profile"):
                        # CPU clock: time the process spent preempted or waiting is not counted.
                        self.profile = cProfile.Profile(time.process_time)
                        self.profile_path = query["profile"]
                        self.profile.enable()
                response = JSONResponse(self.stats.snapshot() | {"pid": os.getpid()})
                await response(scope, receive, send)
                return
            if path.startswith("/oidc/") and path.endswith("/callback"):
                self.stats.callback_started()
                started = time.perf_counter()
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.stats.callback_ended(time.perf_counter() - started)
                return
        await self.app(scope, receive, send)


def bare_relying_party(cfg: dict[str, Any]) -> Any:
    """The least a relying party does: a minimal Starlette app with authlib's client that
    redirects to the provider (``/login``) and, at ``/callback``, exchanges the code and
    validates the ID token (``authorize_access_token``), then answers 200. No database,
    no session of its own beyond authlib's state cookie, no userinfo."""
    import httpx2  # authlib's HTTP client package (a fork of httpx)
    from authlib.integrations.starlette_client import OAuth
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    class KeptTransport(httpx2.AsyncBaseTransport):
        """One connection pool for the HTTP clients authlib makes per call (Tenantry keeps
        one client per process too): without it each callback would pay for a new client
        (its SSL context: ~half of this app's CPU), and the ratio would flatter Tenantry."""

        def __init__(self) -> None:
            self.inner = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            """Kept open: authlib closes its per-call client after each use."""

    oauth = OAuth()
    oauth.register(
        "bench", client_id=cfg["client_id"], client_secret=cfg["client_secret"],
        server_metadata_url=f"{cfg['issuer']}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256",
                       "transport": KeptTransport()},
    )
    client = oauth.create_client("bench")
    redirect_uri = f"{cfg['public_url']}/callback"

    async def login(request: Request) -> Response:
        response: Response = await client.authorize_redirect(request, redirect_uri)
        return response

    async def callback(request: Request) -> Response:
        token = await client.authorize_access_token(request)
        return PlainTextResponse(f"signed in: {token['userinfo']['sub']}")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/login", login), Route("/callback", callback), Route("/healthz", healthz)],
        middleware=[Middleware(SessionMiddleware, secret_key=cfg["secret_key"])],
    )


def serve(config_path: str) -> None:
    """The app as ``tenantry serve`` runs it (one uvicorn worker, JSON access logs to
    stderr, here a file), with the bench's hooks; or the bare relying party (``bare``)."""
    from tenants.ratelimits import RateLimiter

    cfg = json.loads(Path(config_path).read_text())
    if cfg.get("bare"):
        run_server(bare_relying_party(cfg), cfg["port"])
        return
    authenticator = OpenAuthenticator(OrgId(uuid.UUID(cfg["org_id"]))) if cfg["auth"] == "open" else None
    app = served_app(cfg, authenticator=authenticator, pool_size=cfg["pool_size"])
    # Every code is prepared from 127.0.0.1: lift the per-address sign-in limit (30 per
    # 5 minutes). The callback itself does not consult it.
    app.state.web.login_limiter = RateLimiter("sign-in", 10**9, 1)
    stats = ServerStats()
    rp_http = app.state.web.rp.http
    rp_http._transport = TimingTransport(rp_http._transport, stats)
    for pattern, transport in list(rp_http._mounts.items()):
        if transport is not None:
            rp_http._mounts[pattern] = TimingTransport(transport, stats)
    run_server(BenchASGI(app, stats), cfg["port"])


# --- processes and CPU accounting --------------------------------------------------------


def _proc_cpu(pid: int) -> float | None:
    try:
        return process_cpu(pid)
    except OSError:  # the process is gone
        return None


def _postgres_backends(database: str) -> list[int]:
    """The server processes serving ``database`` (their title names it), not other servers'."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f" {database} " in f" {title} ":
                pids.append(int(entry.name))
    return pids


def _machine_busy() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuMeter:
    """CPU seconds used by named processes between ``start`` and ``stop`` (from /proc), and
    by everything else on the machine (``other processes``: work that is not this bench)."""

    def __init__(self, groups: dict[str, list[int]], database: str) -> None:
        self.groups = groups
        self.database = database
        self.before: dict[int, float] = {}
        self.machine = 0.0
        self.used: Counter[str] = Counter()

    def start(self) -> None:
        self.groups["postgres backends"] = _postgres_backends(self.database)
        self.before = {pid: cpu for pids in self.groups.values() for pid in pids
                       if (cpu := _proc_cpu(pid)) is not None}
        self.machine = _machine_busy()

    def stop(self) -> None:
        machine = _machine_busy() - self.machine
        for name, pids in self.groups.items():
            for pid in pids:
                after = _proc_cpu(pid)
                if after is not None and pid in self.before:
                    self.used[name] += after - self.before[pid]
        self.used["other processes"] += max(0.0, machine - sum(self.used.values()))


class SigninServer(AppServer):
    """One app process (``--serve``) of this script: the ``auth`` it checks requests with
    (``bearer`` tokens, or ``open``: everyone is ``org_id`` with every permission), and its
    ``/__bench/…`` controls."""

    def __init__(self, name: str, workdir: Path, *, port: int, auth: str, org_id: OrgId, db_urls: Any,
                 secret_key: str, pool_size: int = 10) -> None:
        super().__init__(SCRIPT, workdir, db_urls, name=name, port=port, secret_key=secret_key,
                         ready_path="/__bench/stats",
                         config={"auth": auth, "org_id": str(org_id), "pool_size": pool_size})

    async def control(self, what: str, profile: Path | None = None) -> dict[str, Any]:
        query = f"?{urlencode({'profile': str(profile)})}" if profile else ""
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.get(f"/__bench/{what}{query}")
            response.raise_for_status()
            return dict(response.json())


def auth_servers(setup: Setup, workdir: Path, db_urls: Any, secret_key: str) -> dict[str, SigninServer]:
    """The two apps of ``auth_overhead``: API tokens checked (``bearer``), or nobody asked
    for one (``open``)."""
    return {
        "bearer": SigninServer("bearer", workdir, port=free_port(), auth="bearer", org_id=setup.org_id,
                               db_urls=db_urls, secret_key=secret_key),
        "open": SigninServer("open", workdir, port=free_port(), auth="open", org_id=setup.org_id,
                             db_urls=db_urls, secret_key=secret_key),
    }


@contextmanager
def running(servers: Sequence[SigninServer]) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


@dataclass(frozen=True, slots=True)
class Profile:
    kind: str
    label: str
    path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def cprofile_path(self) -> Path | None:
        return self.path if self.kind == "cprofile" else None


class Profiler:
    """Where an app process spends its time during one measured round.

    ``cprofile``: the app profiles itself with cProfile on a CPU clock (time preempted by
    other processes or waiting on the database is not counted, so it holds on a busy
    machine; it slows the app about 2x, so the round's figures are not representative).
    ``py-spy``: samples from outside (``pip install py-spy``), little overhead, but it counts
    wall time of the running thread, including time preempted by other processes.
    """

    def __init__(self, kind: str | None, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.exe = shutil.which("py-spy") if kind == "py-spy" else None
        if kind == "py-spy" and self.exe is None:
            console.print("[yellow]--profile py-spy: py-spy is not installed (pip install py-spy); no profiles[/]")
            self.kind = None

    def start(self, pid: int, label: str, seconds: float) -> Profile | None:
        if self.kind == "cprofile":
            return Profile("cprofile", label, self.workdir / f"profile-{label}.pstats")
        if self.kind == "py-spy" and self.exe:
            out = self.workdir / f"profile-{label}.txt"
            process = subprocess.Popen(
                [self.exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking",
                 "--duration", str(max(1, int(seconds))), "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            return Profile("py-spy", label, out, process)
        return None

    @staticmethod
    def report(profile: Profile | None, units: int, unit: str, top: int = 24) -> None:
        if profile is None:
            return
        if profile.kind == "cprofile":
            _report_cprofile(profile, units, unit, top)
        else:
            _report_py_spy(profile, top)


def _report_cprofile(profile: Profile, units: int, unit: str, top: int) -> None:
    if not profile.path.exists() or units == 0:
        console.print(f"profile {profile.label}: nothing recorded")
        return
    data = pstats.Stats(str(profile.path)).stats  # type: ignore[attr-defined]
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0.0
    for (filename, line, func), (_, _, tottime, cumtime, _) in data.items():
        package = _package(f"x ({filename}:{line})")
        own[package] += tottime
        total += tottime
        where = _where(filename)
        if filename.startswith("~") or where.startswith(PLUMBING_FILES):
            continue
        cumulative[f"{func} ({where}:{line})"] = max(cumulative[f"{func} ({where}:{line})"], cumtime)
    per = 1e6 / units
    console.print(f"[bold]profile {profile.label}[/] (cProfile, CPU clock, slows the app ~2x): "
                  f"{total * per:.0f} µs CPU per {unit} while profiled")
    console.print(f"  own time per {unit} by package: " + "; ".join(
        f"{'C functions' if p == '~' else p} {t * per:.0f} µs" for p, t in own.most_common(14)))
    console.print(f"  cumulative per {unit}, functions of this project and what they call into:")
    for frame, seconds in cumulative.most_common(top):
        console.print(f"    {seconds * per:7.0f} µs  {frame}")


def _where(filename: str) -> str:
    root = str(ROOT) + "/"
    if filename.startswith(root):
        return filename[len(root):]
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    return "/".join(Path(filename).parts[-2:])


def _report_py_spy(profile: Profile, top: int) -> None:
    assert profile.process is not None
    try:
        profile.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profile.process.kill()
    if not profile.path.exists():
        console.print(f"profile {profile.label}: py-spy wrote nothing")
        return
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    total = 0
    for line in profile.path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        for frame in {_short_frame(f) for f in frames}:
            inclusive[frame] += count
        by_package[_package(frames[-1])] += count
    if not total:
        return
    console.print(f"[bold]profile {profile.label}[/]: {total} samples at 200/s (py-spy, wall time of the running "
                  f"thread, including time preempted by other processes)")
    console.print("  own time by package: " + "; ".join(
        f"{100 * c / total:.1f}% {p}" for p, c in by_package.most_common(12)))
    console.print("  inclusive, project code and what it calls (the ASGI/uvicorn plumbing omitted):")
    shown = 0
    for frame, count in inclusive.most_common():
        if frame.split(" (")[0] in PLUMBING:
            continue
        console.print(f"    {100 * count / total:5.1f}%  {frame}")
        shown += 1
        if shown >= top:
            break


#: Frames on every request's stack (server, middleware, routing): not informative.
PLUMBING = {
    "<module>", "main", "serve", "Runner.run", "asyncio_run", "Server.run", "Server.serve", "run", "_run",
    "run_forever", "run_until_complete", "_run_once", "BaseEventLoop.run_forever",
    "BaseEventLoop.run_until_complete", "BaseEventLoop._run_once", "Handle._run",
    "RequestResponseCycle.run_asgi", "ProxyHeadersMiddleware.__call__", "BenchASGI.__call__",
    "Starlette.__call__", "ServerErrorMiddleware.__call__", "RequestContextMiddleware.__call__",
    "ExceptionMiddleware.__call__", "wrap_app_handling_exceptions.<locals>.wrapped_app", "Router.__call__",
    "Router.app", "Route.handle", "request_response.<locals>.app", "request_response.<locals>.app.<locals>.app",
    "ASGI3Middleware.__call__", "uvloop.loop.Handle._run", "_run_module_as_main", "_run_code",
    "TaskStepMethWrapper", "Task.__step", "Task.__step_run_and_handle_result",
}


#: Files of the server, middleware and routing layers every request passes through.
PLUMBING_FILES = ("uvicorn/", "starlette/applications.py", "starlette/middleware/", "starlette/routing.py",
                  "starlette/_exception_handler.py", "app/middleware.py", "bench/", "asyncio/", "uvloop/",
                  "contextlib.py")


def _package(frame: str) -> str:
    """Which package a frame's code lives in: ours by top folder, else the site-packages name."""
    match = re.match(r".* \((.*?)(?::\d+)?\)$", frame)
    path = match.group(1) if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    root = str(ROOT) + "/"
    if path.startswith(root):
        return path[len(root):].split("/", 1)[0]
    if "/lib/python3" in path:
        rest = path.split("/lib/python3", 1)[1].split("/", 2)
        return "stdlib " + (rest[1].removesuffix(".py") if len(rest) > 1 else "?")
    return path or "?"


def _short_frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` → ``func (file.py)`` with the package for context."""
    match = re.match(r"(.*) \((.*?):?(\d+)?\)$", frame.strip())
    if not match:
        return frame.strip()
    func, path = match.group(1), match.group(2)
    parts = Path(path).parts
    where = "/".join(parts[-2:]) if parts else path
    return f"{func} ({where})"


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    org_id: OrgId
    slug: str
    token: str
    member_ids: list[uuid.UUID]
    subjects: list[str]


async def create_data(db_urls: Any, cfg: Config, *, slug: str, issuer: str, secret_key: str) -> Setup:
    """One organisation through the service: members (the first ``accounts`` linked to the
    provider's accounts by subject, as after their first sign-in), an all-scopes API
    token, and the SSO connection to the test provider."""
    from app.runtime import orm
    from tenants import db
    from tenants.actors import system_actor
    from tenants.domains.rules import DomainProof
    from tenants.members.lifecycle import MemberStatus
    from tenants.members.service import NewMember, create_member
    from tenants.organisations import service as organisations
    from tenants.organisations.models import OrganisationKind
    from tenants.secrets import SecretBox
    from tenants.sso import service as sso
    from tenants.tokens import service as tokens
    from tenants.units.models import Unit

    actor = system_actor("bench")
    started = time.perf_counter()
    members_total = max(cfg.api_members, cfg.accounts)
    async with orm(db_urls, pool_size=4):
        org = await organisations.create_organisation(
            slug=slug, name="Bench Organisation", kind=OrganisationKind.EMPLOYER,
            domains=[f"{slug}.example"], actor=actor, domains_proof=DomainProof.SEED,
        )
        org_id = OrgId(org.id)
        async with db.tenant_transaction(org_id):
            _, token = await tokens.create_token("bench", [p.value for p in Permission], expires_in=None,
                                                 actor=actor)
            root = await Unit.get(parent_id=None)
            await sso.save_connection(
                {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                 "scopes": ["openid", "email", "profile"], "enabled": True},
                box=SecretBox(secret_key, "sso-client-secrets"), actor=actor,
            )
        member_ids: list[uuid.UUID] = []
        subjects = [f"bench-{i:05d}" for i in range(cfg.accounts)]
        with progress() as bar:
            task = bar.add_task("members (create_member)", total=members_total)
            for start in range(0, members_total, 200):
                async with db.tenant_transaction(org_id):
                    for i in range(start, min(start + 200, members_total)):
                        member = await create_member(
                            NewMember(email=f"user{i:05d}@{slug}.example", name=f"Bench User {i}", unit_id=root.id,
                                      status=MemberStatus.ACTIVE,
                                      idp_subject=subjects[i] if i < len(subjects) else None),
                            actor=actor,
                        )
                        member_ids.append(member.id)
                        bar.advance(task)
    console.print(f"organisation {slug}: {members_total} members, API token, SSO connection to {issuer} "
                  f"({time.perf_counter() - started:.1f} s)")
    return Setup(org_id, slug, token, member_ids, subjects)


# --- figure 1: OIDC callbacks ----------------------------------------------------------


class _NoCookies(http.cookiejar.CookiePolicy):
    """The timed client keeps no cookies: every callback sends exactly its browser's cookie."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = False

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: Any, request: Any) -> bool:
        return False

    def path_return_ok(self, path: Any, request: Any) -> bool:
        return False


@dataclass(slots=True)
class Browser:
    """A person's browser towards the app (its ``tenantry_browser`` cookie and the login
    form's CSRF token) and towards the provider (its session cookie: after the first login
    the provider answers the authorization request without showing the form again)."""

    sub: str
    app: httpx.Client
    op: httpx.Client
    csrf: str
    cookie: str

    def close(self) -> None:
        self.app.close()
        self.op.close()


@dataclass(frozen=True, slots=True)
class Pending:
    """A completed authorization: the callback URL the provider redirected to, unvisited."""

    path: str
    cookie: str


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def open_browser(app_url: str, slug: str, sub: str) -> Browser:
    app = httpx.Client(base_url=app_url, timeout=30)
    response = app.get(f"/login/{slug}")
    match = CSRF_FIELD.search(response.text)
    cookie = app.cookies.get("tenantry_browser")
    if response.status_code != 200 or match is None or cookie is None:
        raise RuntimeError(f"GET /login/{slug} gave {response.status_code} without a CSRF field or browser "
                           f"cookie: {response.text[:300]}")
    return Browser(sub, app, httpx.Client(timeout=30), match.group(1), cookie)


def prepare_codes(browsers: Sequence[Browser], count: int, slug: str, threads: int, bar: Any,
                  task: Any) -> list[Pending]:
    """``count`` completed authorizations, spread over the browsers (one thread per browser
    at a time, so a browser's cookie jars are never shared between threads)."""
    from tests.support.oidc_provider import login_with_browserless_flow

    share = [count // len(browsers) + (1 if i < count % len(browsers) else 0) for i in range(len(browsers))]

    def one_browser(browser: Browser, n: int) -> list[Pending]:
        made = []
        for _ in range(n):
            response = browser.app.post(f"/login/{slug}/sso", data={"csrf": browser.csrf, "next": ""})
            location = response.headers.get("location", "")
            if response.status_code != 303 or not location.startswith("http"):
                raise RuntimeError(f"POST /login/{slug}/sso gave {response.status_code} {location!r}: "
                                   f"{response.text[:300]}")
            callback = login_with_browserless_flow(location, browser.sub, client=browser.op)
            parts = urlsplit(callback)
            if "code=" not in parts.query:
                raise RuntimeError(f"the provider answered without a code: {callback}")
            made.append(Pending(f"{parts.path}?{parts.query}", browser.cookie))
            bar.advance(task)
        return made

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one_browser, browsers, share))
    return [p for batch in results for p in batch]


def prepare_bare_codes(app_url: str, subjects: Sequence[str], count: int, threads: int, bar: Any,
                       task: Any) -> list[Pending]:
    """``count`` completed authorizations for the bare relying party, each from a fresh
    ``/login`` (its own state cookie: the jar is emptied before each), signed in at the
    provider by one of ``subjects`` (one provider session per subject, one thread per subject
    at a time). One client per subject, not per code: making one costs ~35 ms of CPU (its
    TLS context), more than the rest of a code's preparation."""
    from tests.support.oidc_provider import login_with_browserless_flow

    share = [count // len(subjects) + (1 if i < count % len(subjects) else 0) for i in range(len(subjects))]

    def one_person(sub: str, n: int) -> list[Pending]:
        made = []
        with httpx.Client(timeout=30) as op, httpx.Client(base_url=app_url, timeout=30) as app:
            for _ in range(n):
                app.cookies.clear()
                response = app.get("/login")
                location = response.headers.get("location", "")
                cookie = app.cookies.get("session")
                if response.status_code not in (302, 303, 307) or cookie is None:
                    raise RuntimeError(f"bare GET /login gave {response.status_code}: {response.text[:300]}")
                callback = login_with_browserless_flow(location, sub, client=op)
                parts = urlsplit(callback)
                if "code=" not in parts.query:
                    raise RuntimeError(f"the provider answered without a code: {callback}")
                made.append(Pending(f"{parts.path}?{parts.query}", cookie))
                bar.advance(task)
        return made

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one_person, subjects, share))
    return [p for batch in results for p in batch]


@dataclass(slots=True)
class CallbackRound:
    ok: int
    failures: Counter[str]
    wall: float
    latencies: list[float]
    server: dict[str, Any]
    cpu: Counter[str]
    prep_seconds: float
    oldest_code_age: float


async def run_callbacks(app_url: str, pendings: Sequence[Pending], concurrency: int, bar: Any,
                        task: Any, *, bare: bool = False) -> tuple[int, Counter[str], float, list[float]]:
    """Visit every callback URL with its browser cookie, ``concurrency`` at a time.
    Success: 303 to the console/account with the session cookie set (``bare``: the bare
    relying party's 200, its state cookie sent)."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    ok = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    jar = http.cookiejar.CookieJar(policy=_NoCookies())
    async with httpx.AsyncClient(base_url=app_url, timeout=30, limits=limits, cookies=jar) as client:

        async def worker() -> None:
            nonlocal ok, next_index
            while next_index < len(pendings):
                item = pendings[next_index]
                next_index += 1
                started = time.perf_counter()
                cookie = f"session={item.cookie}" if bare else f"tenantry_browser={item.cookie}"
                response = await client.get(item.path, headers={"Cookie": cookie})
                latencies.append(time.perf_counter() - started)
                signed_in = response.status_code == 200 if bare else (
                    response.status_code == 303 and "tenantry_session=" in response.headers.get("set-cookie", ""))
                if signed_in:
                    ok += 1
                else:
                    reason = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))[-160:]
                    failures[f"{response.status_code}: {reason.strip()}"] += 1
                bar.advance(task)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return ok, failures, wall, latencies


async def figure_callbacks(cfg: Config, server: SigninServer, setup: Setup, provider_pid: int,
                           profiler: Profiler, database: str) -> list[CallbackRound]:
    loop = asyncio.get_running_loop()
    browsers = await loop.run_in_executor(
        None, lambda: [open_browser(server.url, setup.slug, sub) for sub in setup.subjects])
    rounds: list[CallbackRound] = []
    try:
        # Warm-up (untimed): each browser's first login at the provider shows its form; the
        # app fetches discovery and JWKS and fills its pools.
        with progress() as bar:
            prep = bar.add_task("warm-up codes", total=len(browsers))
            pendings = await asyncio.to_thread(prepare_codes, browsers, len(browsers), setup.slug,
                                               cfg.prep_threads, bar, prep)
            run = bar.add_task("warm-up callbacks", total=len(pendings))
            ok, failures, _, _ = await run_callbacks(server.url, pendings, cfg.callback_concurrency, bar, run)
        if failures:
            raise RuntimeError(f"warm-up callbacks failed: {dict(failures)}\n{server.log_tail()}")
        # With --profile, one extra round first, profiled and left out of the figures.
        first = 0 if profiler.kind else 1
        for index in range(first, cfg.rounds + 1):
            name = f"round {index}/{cfg.rounds}" if index else "profiled round (not counted)"
            with progress() as bar:
                prep = bar.add_task(f"{name}: prepare codes (untimed)", total=cfg.batch)
                prep_started = time.perf_counter()
                pendings = await asyncio.to_thread(prepare_codes, browsers, cfg.batch, setup.slug,
                                                   cfg.prep_threads, bar, prep)
                prep_seconds = time.perf_counter() - prep_started
                random.shuffle(pendings)
                run = bar.add_task(f"{name}: callbacks (timed)", total=len(pendings))
                meter = CpuMeter({"app": [server.pid], "provider (node)": [provider_pid],
                                  "bench client": [os.getpid()]}, database)
                profile = profiler.start(server.pid, "app process during OIDC callbacks", 4) if not index else None
                await server.control("reset", profile=profile.cprofile_path if profile else None)
                meter.start()
                ok, failures, wall, latencies = await run_callbacks(
                    server.url, pendings, cfg.callback_concurrency, bar, run)
                meter.stop()
                stats = await server.control("stats")
                oldest = time.perf_counter() - prep_started
            if index:
                rounds.append(CallbackRound(ok, failures, wall, latencies, stats, meter.used, prep_seconds, oldest))
            console.print(
                f"  {name}: {ok}/{len(pendings)} callbacks in {wall:.2f} s = {ok / wall:.1f}/s wall, "
                f"app CPU {stats['cpu']:.2f} s → {ok / stats['cpu']:.1f} callbacks per CPU-second "
                f"(codes prepared in {prep_seconds:.1f} s, oldest used at {oldest:.0f} s of {CODE_LIFETIME_S:.0f})"
            )
            if failures:
                console.print(f"  [red]failures[/]: {dict(failures.most_common(3))}")
            Profiler.report(profile, ok, "callback")
    finally:
        for browser in browsers:
            browser.close()
    return rounds


async def figure_bare_callbacks(cfg: Config, server: AppServer, subjects: Sequence[str]) -> float:
    """Callbacks per CPU-second of the bare relying party's process: a warm-up round, then
    ``cfg.rounds`` rounds of ``cfg.batch`` codes prepared untimed, as for Tenantry."""
    done = cpu = 0.0
    for index in range(cfg.rounds + 1):
        name = f"bare round {index}/{cfg.rounds}" if index else "bare warm-up"
        with progress() as bar:
            prep = bar.add_task(f"{name}: prepare codes (untimed)", total=cfg.batch)
            pendings = await asyncio.to_thread(prepare_bare_codes, server.url, subjects, cfg.batch,
                                               cfg.prep_threads, bar, prep)
            random.shuffle(pendings)
            run = bar.add_task(f"{name}: callbacks (timed)", total=len(pendings))
            before = process_cpu(server.pid)
            ok, failures, wall, _ = await run_callbacks(server.url, pendings, cfg.callback_concurrency, bar, run,
                                                        bare=True)
            used = process_cpu(server.pid) - before
        if failures:
            raise RuntimeError(f"bare relying party callbacks failed: {dict(failures.most_common(3))}\n"
                               f"{server.log_tail()}")
        console.print(f"  {name}: {ok} callbacks in {wall:.2f} s, app CPU {used:.2f} s "
                      f"→ {ok / used if used else float('nan'):.1f} per CPU-second")
        if index:
            done += ok
            cpu += used
    return done / cpu if cpu else float("nan")


def report_callbacks(rounds: Sequence[CallbackRound], cfg: Config) -> float:
    ok = sum(r.ok for r in rounds)
    failed = sum(sum(r.failures.values()) for r in rounds)
    wall = sum(r.wall for r in rounds)
    cpu = sum(r.server["cpu"] for r in rounds)
    server_wall = sum(r.server["wall"] for r in rounds)
    provider_only = sum(r.server["provider_only"] for r in rounds)
    idle = sum(r.server["idle"] for r in rounds)
    callback_seconds = sum(r.server["callback_seconds"] for r in rounds)
    calls: Counter[str] = Counter()
    call_seconds: Counter[str] = Counter()
    for r in rounds:
        calls.update(r.server["provider_calls"])
        call_seconds.update(r.server["provider_seconds"])
    latencies = [x for r in rounds for x in r.latencies]
    cpu_by: Counter[str] = Counter()
    for r in rounds:
        cpu_by.update(r.cpu)
    provider_seconds = sum(call_seconds.values())
    per_core = ok / cpu if cpu else float("nan")
    active = server_wall - idle - provider_only
    console.print()
    console.print("[bold]callback_vs_bare_rp[/] — OIDC callbacks completed by one app process (1 uvicorn worker)")
    console.print(f"  {ok} callbacks in {cfg.rounds} timed rounds of {cfg.batch}, "
                  f"{cfg.callback_concurrency} at a time, "
                  f"{failed} failed; machine: {os.cpu_count()} CPUs")
    console.print(f"  raw throughput            {ok / wall:8.1f} callbacks/s (wall {wall:.2f} s)   "
                  f"latency p50 {ms(percentile(latencies, 50))}  p99 {ms(percentile(latencies, 99))}")
    console.print(f"  app process CPU           {cpu:8.2f} s = {cpu / wall:.2f} cores used → "
                  f"{1000 * cpu / max(ok, 1):.2f} ms CPU per callback")
    console.print(f"  per core (CPU)            {per_core:8.1f} per app CPU-second (÷ the bare RP's: the figure)")
    console.print(f"  per core (wall - provider){ok / active if active > 0 else float('nan'):8.1f} callbacks/s over "
                  f"{active:.2f} s (wall {server_wall:.2f} s - only waiting on the provider {provider_only:.2f} s - "
                  f"idle {idle:.2f} s), 1 core")
    share = provider_seconds / callback_seconds if callback_seconds else float("nan")
    console.print(f"  provider share            {100 * share:8.1f} % of callback time was spent waiting on the "
                  f"provider ({provider_seconds:.2f} s of {callback_seconds:.2f} s, in-app latency)")
    console.print("  provider calls            " + ", ".join(
        f"{name} {calls[name] / max(ok, 1):.2f}/callback x {ms(call_seconds[name] / calls[name])}"
        for name in sorted(calls)))
    console.print("  CPU during timed rounds   " + ", ".join(
        f"{name} {seconds:.2f} s ({1000 * seconds / max(ok, 1):.2f} ms/callback)" for name, seconds in cpu_by.items()))
    contention_note(cpu_by["other processes"], wall)
    if failed or not ok:
        raise fail(f"{failed} callbacks failed, {ok} succeeded")
    return per_core


def contention_note(other_seconds: float, wall: float) -> None:
    """Say so when something else kept the machine busy: wall-clock figures then suffer."""
    if wall > 0 and other_seconds / wall > 0.15:
        console.print(f"  [yellow]other processes used {other_seconds / wall:.2f} cores during the timed rounds: "
                      f"wall-clock figures (req/s, latency) are depressed; CPU-per-request figures much less[/]")


# --- figure 2: authentication overhead ---------------------------------------------------



@dataclass(slots=True)
class LoadResult:
    requests: int
    seconds: float
    p50: float
    p99: float
    errors: int
    cpu: float = 0.0
    cpu_by: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, summary: dict[str, int]) -> LoadResult:
        """From a load generator's summary (``parse_bench_line``, ``httpx_load``)."""
        return cls(summary["requests"], summary["duration_us"] / 1e6, summary["p50_us"] / 1e6,
                   summary["p99_us"] / 1e6, summary["status_errors"] + summary["socket_errors"])

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def load_wrk(url: str, paths_file: Path, script: Path, token: str, seconds: float,
                   concurrency: int, meter: CpuMeter) -> LoadResult:
    process = await asyncio.create_subprocess_exec(
        *wrk_argv(script, url, connections=concurrency, seconds=seconds),
        env={**os.environ, "BENCH_PATHS": str(paths_file), "BENCH_TOKEN": token},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    # wrk is reaped before the meter stops: count it from the children's resource usage.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, _ = await process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter.used["load generator"] += (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return LoadResult.of(parse_bench_line(out.decode(errors="replace")))


async def load_httpx(url: str, paths: Sequence[str], token: str, seconds: float, concurrency: int) -> LoadResult:
    """A round from an httpx client in this process (its CPU is counted as the load generator's)."""

    def send(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
        return client.get(paths[n % len(paths)])

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return LoadResult.of(await httpx_load(url, send, seconds=seconds, connections=concurrency, headers=headers))


@dataclass(slots=True)
class Variant:
    label: str
    server: SigninServer
    results: list[LoadResult] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.results)

    @property
    def rate(self) -> float:
        seconds = sum(r.seconds for r in self.results)
        return self.requests / seconds if seconds else 0.0

    def median(self, attr: str) -> float:
        values = sorted(getattr(r, attr) for r in self.results)
        return values[len(values) // 2] if values else float("nan")


async def figure_auth(cfg: Config, setup: Setup, servers: dict[str, SigninServer], workdir: Path, client_kind: str,
                      seed: int, profiler: Profiler, database: str) -> tuple[Variant, Variant]:
    rng = random.Random(seed)
    paths = [f"/v1/members/{rng.choice(setup.member_ids)}" for _ in range(20_000)]
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    authenticated = Variant("authenticated (API token, BearerAuthenticator)", servers["bearer"])
    open_ = Variant("authentication off (OpenAuthenticator)", servers["open"])

    # Both answer with the member; only the authenticated one refuses a request without a token.
    async with httpx.AsyncClient(timeout=10) as client:
        for variant, token, expected in ((authenticated, setup.token, 200), (authenticated, None, 401),
                                         (open_, setup.token, 200), (open_, None, 200)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.get(variant.server.url + paths[0], headers=headers)
            if response.status_code != expected:
                raise RuntimeError(f"{variant.label}: {paths[0]} with{'out' if not token else ''} a token gave "
                                   f"{response.status_code}, expected {expected}: {response.text[:300]}")

    async def measure(variant: Variant, seconds: float, label: str | None = None) -> LoadResult:
        groups = {"app": [variant.server.pid]} | ({} if client_kind == "wrk" else {"load generator": [os.getpid()]})
        meter = CpuMeter(groups, database)
        profile = profiler.start(variant.server.pid, f"{label}: {variant.label}", seconds - 0.5) if label else None
        await variant.server.control("reset", profile=profile.cprofile_path if profile else None)
        meter.start()
        if client_kind == "wrk":
            result = await load_wrk(variant.server.url, paths_file, script, setup.token, seconds, cfg.api_concurrency,
                                    meter)
        else:
            result = await load_httpx(variant.server.url, paths, setup.token, seconds, cfg.api_concurrency)
        meter.stop()
        result.cpu = float((await variant.server.control("stats"))["cpu"])
        result.cpu_by = meter.used
        if result.errors:
            raise RuntimeError(f"{variant.label}: {result.errors} requests failed\n{variant.server.log_tail()}")
        Profiler.report(profile, result.requests, "request")
        return result

    with progress() as bar:
        task = bar.add_task("warm-up (both apps)", total=2)
        for variant in (authenticated, open_):
            await measure(variant, cfg.warmup_seconds)
            bar.advance(task)
        if profiler.kind:  # profiled, not counted
            task = bar.add_task("profiled rounds (not counted)", total=2)
            for variant in (authenticated, open_):
                await measure(variant, min(cfg.api_seconds, 4.0), "profiled")
                bar.advance(task)
        task = bar.add_task(f"interleaved rounds, {cfg.api_seconds:g} s each", total=2 * cfg.api_pairs)
        for index in range(cfg.api_pairs):
            order = (authenticated, open_) if index % 2 == 0 else (open_, authenticated)
            for variant in order:
                variant.results.append(await measure(variant, cfg.api_seconds))
                bar.advance(task)
    return authenticated, open_


def report_auth(authenticated: Variant, open_: Variant, client_kind: str, cfg: Config) -> float:
    console.print()
    console.print(f"[bold]auth_overhead[/] — GET /v1/members/{{id}}, {cfg.api_concurrency} connections "
                  f"({client_kind}), {cfg.api_pairs} interleaved pairs of {cfg.api_seconds:g} s, "
                  "one uvicorn worker per app")
    for variant in (authenticated, open_):
        seconds = sum(r.seconds for r in variant.results)
        cpu_by: Counter[str] = Counter()
        for r in variant.results:
            cpu_by.update(r.cpu_by)
        per_request = {name: 1e6 * value / max(variant.requests, 1) for name, value in cpu_by.items()}
        console.print(
            f"  {variant.label:<48} {variant.rate:8.1f} req/s   p50 {ms(variant.median('p50')):>9}   "
            f"p99 {ms(variant.median('p99')):>9}   ({variant.requests} requests)"
        )
        console.print(
            "      CPU per request: " + ", ".join(f"{name} {value:.0f} µs" for name, value in per_request.items())
            + f"; app process busy {cpu_by['app'] / seconds:.2f} cores, other processes "
            f"{cpu_by['other processes'] / seconds:.2f} cores"
        )
    contention_note(sum(r.cpu_by["other processes"] for v in (authenticated, open_) for r in v.results),
                    sum(r.seconds for r in authenticated.results + open_.results))
    pairs = [a.rate / b.rate for a, b in zip(authenticated.results, open_.results, strict=True) if b.rate]
    ordered = sorted(pairs)
    console.print(f"  per-pair ratios: median {ordered[len(ordered) // 2]:.3f}, "
                  f"range {ordered[0]:.3f}-{ordered[-1]:.3f} ({len(pairs)} pairs; p50/p99 above are the "
                  f"medians of the rounds')")
    cpu_a = sum(r.cpu for r in authenticated.results) / max(authenticated.requests, 1)
    cpu_b = sum(r.cpu for r in open_.results) / max(open_.requests, 1)
    console.print(f"  authentication costs {1e6 * (cpu_a - cpu_b):.0f} µs of app CPU per request "
                  f"({100 * (cpu_a - cpu_b) / cpu_b:.1f} % of the unauthenticated request); "
                  f"CPU-based ratio (unauthenticated/authenticated app CPU per request) {cpu_b / cpu_a:.3f}")
    return authenticated.rate / open_.rate if open_.rate else float("nan")


# --- main --------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> None:
    from tests.support.oidc_provider import (
        OidcAccount,
        OidcClient,
        ProviderConfig,
        run_oidc_provider,
    )

    cfg = QUICK if args.quick else FULL
    random.seed(args.seed)
    client_kind = load_generator(args.client)
    if client_kind == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk)")
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-bench-signin-"))
    profiler = Profiler(args.profile, workdir)
    secret_key = secrets.token_urlsafe(48)
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    figures: list[tuple[str, float, str, float]] = []
    try:
        with server_url() as server:
            async with bench_database(server) as bdb:
                console.print(await server_facts(bdb.admin_url))
                console.print(f"mode: {'quick' if args.quick else 'full'}; load generator for auth_overhead: "
                              f"{client_kind}; app servers: uvicorn, 1 worker each, JSON access logs as "
                              f"`tenantry serve`")
                sso_port = free_port()
                bare_port = free_port()
                provider_config = ProviderConfig(
                    clients=[OidcClient(CLIENT_ID, CLIENT_SECRET,
                                        redirect_uris=[f"http://127.0.0.1:{sso_port}/oidc/{slug}/callback"]),
                             OidcClient(BARE_CLIENT_ID, CLIENT_SECRET,
                                        redirect_uris=[f"http://127.0.0.1:{bare_port}/callback"])],
                    accounts=[OidcAccount(f"bench-{i:05d}", f"user{i:05d}@{slug}.example", name=f"Bench User {i}")
                              for i in range(cfg.accounts)],
                    # As Entra ID, Google and Okta do, the ID token carries email and name, so
                    # neither side calls userinfo; --userinfo keeps them in userinfo only.
                    claims_in_id_token=not args.userinfo,
                )
                # The apps of auth_overhead, running until the end once started.
                servers: dict[str, SigninServer] = {}
                with ExitStack() as auth_apps:
                    if args.only != "auth":
                        with run_oidc_provider(provider_config) as provider:
                            console.print(f"test provider (node oidc-provider) at {provider.issuer}, "
                                          f"pid {provider.process.pid}")
                            setup = await create_data(bdb.urls, cfg, slug=slug, issuer=provider.issuer,
                                                      secret_key=secret_key)
                            sso_server = SigninServer("sso", workdir, port=sso_port, auth="bearer",
                                                      org_id=setup.org_id, db_urls=bdb.urls, secret_key=secret_key)
                            with running([sso_server]):
                                await sso_server.wait_ready()
                                rounds = await figure_callbacks(cfg, sso_server, setup, provider.process.pid,
                                                                profiler, bdb.name)
                                logged = sso_server.errors_logged()
                            bare = AppServer(SCRIPT, workdir, bdb.urls, name="bare", port=bare_port,
                                             secret_key=secret_key, ready_path="/healthz",
                                             config={"bare": True, "issuer": provider.issuer,
                                                     "client_id": BARE_CLIENT_ID, "client_secret": CLIENT_SECRET})
                            with running([bare]):
                                await bare.wait_ready()
                                if args.only != "callbacks":
                                    # Their start-up (seconds of imports) overlaps the bare
                                    # relying party's rounds, which count its own process's
                                    # CPU only. Not before the sso app's rounds: their
                                    # embedded workers would seal its audit events.
                                    servers = auth_servers(setup, workdir, bdb.urls, secret_key)
                                    auth_apps.enter_context(running(list(servers.values())))
                                console.print("bare relying party (authlib + Starlette: code exchange and ID token "
                                              "validation only), same provider:")
                                bare_per_core = await figure_bare_callbacks(cfg, bare, setup.subjects)
                        if logged:
                            raise fail(f"{len(logged)} error lines in the app's log, first: {logged[0]}")
                        per_core = report_callbacks(rounds, cfg)
                        console.print(f"  bare relying party        {bare_per_core:8.1f} callbacks per CPU-second of "
                                      "its process (same provider, same run)")
                        figures.append(("callback_vs_bare_rp", per_core / bare_per_core, ">=", 0.6))
                    else:
                        setup = await create_data(bdb.urls, cfg, slug=slug, issuer=f"http://127.0.0.1:{sso_port}",
                                                  secret_key=secret_key)

                    if args.only != "callbacks":
                        if not servers:
                            servers = auth_servers(setup, workdir, bdb.urls, secret_key)
                            auth_apps.enter_context(running(list(servers.values())))
                        for s in servers.values():
                            await s.wait_ready()
                        authenticated, open_ = await figure_auth(cfg, setup, servers, workdir, client_kind,
                                                                 args.seed, profiler, bdb.name)
                if args.only != "callbacks":
                    figures.append(("auth_overhead", report_auth(authenticated, open_, client_kind, cfg), ">=", 0.9))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    console.print()
    report(figures, started=started, quick=args.quick)


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
