"""Test fixtures: a real PostgreSQL (embedded by default, ``TEST_DATABASE_URL`` when given),
the real app in process, and small factories.

Isolation: every test starts from empty tables (emptied as the owner, ``CLEAN_SQL``), and the
app under test connects as the runtime role exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import hypothesis
import pytest
import uvicorn
from argon2 import PasswordHasher

from app import database
from app.database import DatabaseUrls
from app.factory import create_app
from app.settings import Settings
from app.worker import configure_handlers, load_handlers
from tenants import db
from tenants.actors import Actor, system_actor
from tenants.audit.sealer import seal_all
from tenants.domains.rules import DomainProof
from tenants.ids import OrgId
from tenants.organisations import service as organisations
from tenants.organisations.models import OrganisationKind
from tenants.permissions import Permission
from tenants.sessions import passwords
from tenants.tokens import service as tokens
from tenants.units.models import Unit
from tests.support.dns_server import RunningDns, Zone, run_dns_server
from tests.support.entra import EntraKeys, serve_entra_keys

# Mutation testing (scripts/mutation, `--hypothesis-profile=mutation`) only needs to know
# whether a property fails: the same examples for every mutant and every run, no shrinking
# (minutes per killed mutant), and no deadline, whose misses on a busy machine would count
# as kills.
hypothesis.settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    deadline=None,
    phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.target),
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)

# Job handlers register on import, as in `tenantry worker` (tests run jobs in-process).
load_handlers()

#: The product's password hasher (argon2id at 64 MiB and three passes: about 0.15 s a hash
#: or a check on this machine), kept for the test of its parameters.
PRODUCT_HASHER = passwords.HASHER
# The tests set and try passwords hundreds of times and check what is done with them, not
# what argon2 costs: in this process they hash with argon2id at its cheapest (a hash made so
# still verifies with the product's hasher, which reads the parameters from the hash).
passwords.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

TENANT_TABLES = (
    # The audit tables first, in the order the app's background sealer locks them: the cleaning
    # (which locks in this order) then waits for a sealing pass instead of deadlocking.
    "audit_heads", "audit_pending", "audit_events", "audit_chain", "member_status_days",
    "policy_change_notices", "policy_rules", "policy_versions", "member_choices", "declared_settings", "outbox_events",
    "member_event_counters",
    "sessions", "login_attempts", "local_credentials", "sso_connections", "product_clients",
    "seen_logout_tokens",
    "identity_backends", "entra_claims_providers", "signal_transmitters", "seen_security_events",
    "access_review_items", "access_reviews",
    "access_log", "access_grants", "access_policies",
    "mail_messages", "mail_template_overrides", "privacy_export_parts", "privacy_exports",
    "privacy_request_events", "privacy_requests", "privacy_request_policies",
    "webhook_deliveries", "jobs", "departure_steps", "departures", "departure_policies",
    "content_items",
    "scim_users", "scim_groups", "scim_settings", "domains", "sign_ins", "member_keys",
    "retention_policies", "api_tokens", "product_accounts", "products", "tenant_counters",
    "group_memberships", "groups", "members", "units", "organisations",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each worker's share starts with its part of the slow tests.

    ``scripts/test`` runs ``--dist worksteal``: pytest-xdist hands each of the N workers a
    contiguous Nth of this list, and a worker that runs out takes the back half of the
    longest remaining queue. Dealing the slow tests out (the first to the first share, the
    second to the second, …) and putting them first in each share means every worker
    starts on long tests and the run ends on short ones that can move, instead of one
    worker running a minute-long test alone at the end. In one process: the slow ones first."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    for share in range(workers):
        size = (len(items) - len(ordered)) // (workers - share)  # as worksteal deals them
        head = slow[share::workers]
        split = max(0, size - len(head))
        ordered += head + fast[:split]
        fast = fast[split:]
    items[:] = ordered + fast


@pytest.fixture(scope="session")
def admin_server_url() -> Iterator[str]:
    """A PostgreSQL server we may create databases on: ``TEST_DATABASE_URL``, or an
    embedded server of this session's own. Its folder is not under pytest's basetemp,
    which pytest prunes while other sessions may still be running; it is deleted when
    the session's process exits."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    data_dir = Path(tempfile.mkdtemp(prefix="tenantry-test-pg-"))
    with database.embedded_server(data_dir, delete_on_exit=True) as url:
        asyncio.run(_without_fsync(url))
        yield url


async def _without_fsync(url: str) -> None:
    """The session's own server stops flushing to disk (``fsync = off``): every commit of
    the suite otherwise waits on ``fdatasync``, a ninth of a single process's time here.
    Nothing the tests check needs it: the crashes they cause are crashes of processes (the
    service's, or the postmaster's in the restart tests), after which everything PostgreSQL
    wrote is in the kernel's cache and recovery finds it; only the machine losing power
    would lose it, and the data is thrown away at the end anyway."""
    conn = await asyncpg.connect(**database.connection_params(url))
    try:
        await conn.execute("ALTER SYSTEM SET fsync = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture
async def fresh_database_url(admin_server_url: str) -> AsyncIterator[str]:
    """The admin URL of a database that does not exist yet (dropped afterwards): for
    tests of creating and upgrading one."""
    name = f"tenantry_fresh_{uuid.uuid4().hex[:8]}"
    yield database.with_database(admin_server_url, name)
    server = await asyncpg.connect(
        **database.connection_params(database.with_database(admin_server_url, "postgres"))
    )
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await server.close()


@pytest.fixture(scope="session")
async def database_urls(admin_server_url: str) -> AsyncIterator[DatabaseUrls]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    name = f"tenantry_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = database.with_database(admin_server_url, name)
    urls = await database.prepare_database(admin_url, app_role="tenantry_app", app_database_url=None)
    await database.migrate(urls)
    yield urls
    conn = await asyncpg.connect(**database.connection_params(database.with_database(admin_server_url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def owner_conn(database_urls: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """An administrative connection (superuser on the test server): for cleaning and for
    tampering with rows the runtime role may not touch."""
    conn = await asyncpg.connect(**database.connection_params(database_urls.admin))
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[RunningDns]:
    """A real DNS server on 127.0.0.1 that the app's domain verification asks."""
    with run_dns_server() as running:
        yield running


@pytest.fixture
def dns(dns_server: RunningDns) -> Iterator[Zone]:
    """The DNS server's zone, empty at the start of the test and emptied after it."""
    dns_server.zone.clear()
    yield dns_server.zone
    dns_server.zone.clear()


@pytest.fixture(scope="session")
def entra_keys() -> Iterator[EntraKeys]:
    """Entra's signing keys per tenant, served as its JWKS on 127.0.0.1 (the app's
    ``entra_jwks_url`` points here)."""
    with serve_entra_keys() as keys:
        yield keys


@pytest.fixture(scope="session")
def settings(
    tmp_path_factory: pytest.TempPathFactory, live_port: int, dns_server: RunningDns,
    entra_keys: EntraKeys,
) -> Settings:
    # public_url is the live server's address (see live_server), so redirect URIs the app
    # builds point where a browser or an identity provider can reach it.
    return Settings(secret_key="test-secret-" + "x" * 40, data_dir=tmp_path_factory.mktemp("data"),
                    log_json=False, public_url=f"http://127.0.0.1:{live_port}",
                    # Low, so the rate-limit test needs few (slow, argon2) attempts; every
                    # test client presents its own address, so others never reach it.
                    login_rate_limit=30,
                    # Tests run jobs themselves (Worker.run_until_idle), deterministically.
                    embedded_worker=False, entra_jwks_url=entra_keys.jwks_url,
                    dns_nameservers=(dns_server.address,), dns_port=dns_server.port)


@pytest.fixture(scope="session")
async def app(settings: Settings, database_urls: DatabaseUrls) -> AsyncIterator[Any]:
    configure_handlers(settings)
    application = create_app(settings, database_urls)
    async with application.router.lifespan_context(application):
        yield application


#: Empties every tenant table as TRUNCATE … RESTART IDENTITY would, at a tenth of its cost
#: (about 15 ms against 150: TRUNCATE gives each of some 700 tables and indexes a new file).
#: The exclusive locks come first, in TENANT_TABLES' order, so a background sealer or
#: listener mid-transaction is waited for exactly as TRUNCATE waits for it; with triggers
#: and foreign-key checks off for this transaction (``session_replication_role``), the
#: tables empty in any order and no counter trigger fires; the sequences the tables own
#: start again at 1. Dead rows are the embedded server's autovacuum's.
CLEAN_SQL = f"""
LOCK TABLE {", ".join(TENANT_TABLES)} IN ACCESS EXCLUSIVE MODE;
SET LOCAL session_replication_role = replica;
{"".join(f"DELETE FROM {table};" for table in TENANT_TABLES)}
SELECT setval(s.oid, 1, false)
  FROM pg_class s
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
 WHERE s.relkind = 'S' AND t.relnamespace = 'public'::regnamespace
   AND t.relname IN ({", ".join(f"'{table}'" for table in TENANT_TABLES)});
"""


async def empty_tenant_tables(conn: asyncpg.Connection) -> None:
    """Empty every tenant table (``CLEAN_SQL``).

    The app's sealer and listeners keep reading these tables between tests, and the
    exclusive locks are taken one table at a time, so a reader holding one table while
    waiting for the next can deadlock with it; PostgreSQL then aborts one side and the
    cleaning is simply tried again.
    """
    for attempt in range(5):
        try:
            async with conn.transaction():
                await conn.execute(CLEAN_SQL)
            return
        except asyncpg.DeadlockDetectedError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


@pytest.fixture
async def clean_db(owner_conn: asyncpg.Connection, app: Any) -> None:
    """Empty every tenant table; every fixture that touches data depends on it."""
    await empty_tenant_tables(owner_conn)


@pytest.fixture
async def client(app: Any, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield c


@dataclass
class OrgHandle:
    """An organisation made for a test, with an all-scopes token and its root unit."""

    id: OrgId
    slug: str
    token: str
    root_unit_id: uuid.UUID
    client: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(path, headers=self.headers, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.patch(path, headers=self.headers, json=json, **kw)

    async def put(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.put(path, headers=self.headers, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(path, headers=self.headers, **kw)

    async def token_with(self, *scopes: Permission) -> str:
        async with db.tenant_transaction(self.id):
            _, text = await tokens.create_token("scoped", [s.value for s in scopes], expires_in=None, actor=ACTOR)
        return text


ACTOR: Actor = system_actor("tests")


async def make_org(client: httpx.AsyncClient, slug: str | None = None, *,
                   kind: OrganisationKind = OrganisationKind.EMPLOYER) -> OrgHandle:
    slug = slug or f"org-{uuid.uuid4().hex[:8]}"
    # The fixture's own domain counts at once ("verified by seed"): tests of other things
    # sign in by email without a DNS server. Tests of domain routing prove theirs in DNS.
    org = await organisations.create_organisation(
        slug=slug, name=slug.title(), kind=kind, domains=[f"{slug}.example"], actor=ACTOR,
        domains_proof=DomainProof.SEED,
    )
    async with db.tenant_transaction(org.id):
        _, text = await tokens.create_token("tests", [p.value for p in Permission], expires_in=None, actor=ACTOR)
        root = await Unit.get(parent_id=None)
    return OrgHandle(org.id, slug, text, root.id, client)


@pytest.fixture
async def org(client: httpx.AsyncClient) -> OrgHandle:
    return await make_org(client)


@pytest.fixture
async def two_orgs(client: httpx.AsyncClient) -> tuple[OrgHandle, OrgHandle]:
    return await make_org(client, "alpha"), await make_org(client, "bravo")


async def make_unit(org: OrgHandle, name: str | None = None, parent: uuid.UUID | None = None) -> dict[str, Any]:
    response = await org.post("/v1/units", {"name": name or f"unit-{uuid.uuid4().hex[:6]}",
                                            "parent_id": str(parent or org.root_unit_id)})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_member(org: OrgHandle, *, unit: uuid.UUID | str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"email": f"m-{uuid.uuid4().hex[:8]}@{org.slug}.example", "name": "Test Member",
            "unit_id": str(unit or org.root_unit_id), "status": "active", **fields}
    response = await org.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_group(org: OrgHandle, **fields: Any) -> dict[str, Any]:
    response = await org.post("/v1/groups", {"name": f"group-{uuid.uuid4().hex[:6]}", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_product(org: OrgHandle, **fields: Any) -> dict[str, Any]:
    response = await org.post("/v1/products", {"key": f"p{uuid.uuid4().hex[:6]}", "name": "Product", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows per tenant table, read as the owner (sees every organisation), once every audit
    event recorded so far is sealed: the app's sealer moves events from audit_pending to
    audit_chain in the background, which would otherwise change counts between two calls."""
    await seal_all(wait=True)
    counts = {}
    for table in TENANT_TABLES:
        counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
    return counts


# --- a live HTTP server (browser and identity-provider tests) ---------------------------------


@pytest.fixture(scope="session")
def live_socket() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 with a free port, bound before the app is built (its
    settings carry the port) and served by ``live_server``; bound early, so no port race."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def live_port(live_socket: socket.socket) -> int:
    port: int = live_socket.getsockname()[1]
    return port


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C must still stop pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture(scope="session")
async def live_server(app: Any, live_socket: socket.socket, live_port: int) -> AsyncIterator[str]:
    """The app served over real HTTP in the session's event loop; yields its base URL.

    Runs the already started ``app`` (lifespan off: only one app instance may own the
    ORM). Anything that calls it synchronously must run in a thread (asyncio.to_thread),
    or the server cannot answer. uvicorn trusts X-Forwarded-For from 127.0.0.1, so a test
    client can present its own client address.
    """
    server = _QuietServer(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[live_socket]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the live server stopped before it started")
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{live_port}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)
