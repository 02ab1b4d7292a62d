"""The ``tenantry`` command: serve, migrate, organisations, tokens, audit."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from app.cli_audit import register as register_audit_archive
from app.cli_identity import identity_cli
from app.database import DatabaseSetupError, DatabaseUrls
from app.settings import Settings, SettingsError
from tenants import text
from tenants.errors import TenantryError

T = TypeVar("T")

cli = typer.Typer(
    help="Tenantry: organisation-administered account governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Docstrings are wrapped for the source: markdown joins a paragraph's lines again.
    rich_markup_mode="markdown",
)
org_cli = typer.Typer(
    help="Organisations (tenants).", no_args_is_help=True, rich_markup_mode="markdown"
)
token_cli = typer.Typer(
    help="API tokens for scripts.", no_args_is_help=True, rich_markup_mode="markdown"
)
audit_cli = typer.Typer(help="The audit log.", no_args_is_help=True, rich_markup_mode="markdown")
admin_cli = typer.Typer(help="Administrators.", no_args_is_help=True, rich_markup_mode="markdown")
cli.add_typer(org_cli, name="org")
cli.add_typer(token_cli, name="token")
cli.add_typer(audit_cli, name="audit")
register_audit_archive(audit_cli)
cli.add_typer(admin_cli, name="admin")
cli.add_typer(identity_cli, name="identity")

out = Console()
#: Errors are not wrapped (soft_wrap): one error is one line in a journal or a log file.
err = Console(stderr=True, soft_wrap=True)


def load_settings(**overrides: object) -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        err.print(f"[red]Configuration problem:[/red]\n{exc}")
        raise typer.Exit(2) from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    return settings.with_overrides(**changes) if changes else settings


def name_option(value: str) -> str:
    """A name given on the command line, under the service's one text policy
    (``tenants.text``, as the API, console and SCIM apply it)."""
    try:
        return text.clean_name(value.strip())
    except text.TextError as exc:
        raise typer.BadParameter(str(exc)) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    # Escaped: a message quoting an address ("[::1]") or a name is not Rich markup.
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


async def _ready(settings: Settings, url: str, *, migrate: bool, wait: bool) -> DatabaseUrls:
    """``ready_database``; with ``wait``, a database that cannot be reached yet is waited
    for, with a warning per try (anything else wrong with it still stops the command): a
    process started in an outage, which a process manager would otherwise restart in a
    loop, or leave down (``serve`` exited at once and stayed down until restarted)."""
    from app.runtime import ready_database
    from tenants.outages import Backoff, is_database_outage

    backoff = Backoff()
    while True:
        try:
            return await ready_database(settings, url, migrate=migrate)
        except DatabaseSetupError as exc:
            if not (wait and is_database_outage(exc)):
                raise
            delay = backoff.next_delay()
            logging.getLogger("tenantry.start").warning(
                "database unavailable (%s); trying again in %.0f s", exc, delay
            )
            await asyncio.sleep(delay)


def run_with_orm(
    settings: Settings,
    work: Callable[[], Awaitable[T]],
    *,
    migrate: bool = True,
    wait_for_database: bool = False,
) -> T:
    """Run ``work`` with the ORM on the runtime role of a ready database. With
    ``wait_for_database`` (a worker, which a process manager would otherwise restart in a
    loop) a database that cannot be reached yet is waited for, with a warning per try;
    anything else wrong with it still stops the command."""
    from app.runtime import admin_url, orm

    async def main(url: str) -> T:
        urls = await _ready(settings, url, migrate=migrate, wait=wait_for_database)
        async with orm(urls):
            return await work()

    try:
        with admin_url(settings) as url:
            return asyncio.run(main(url))
    except DatabaseSetupError as exc:
        raise fail(str(exc)) from None
    except TenantryError as exc:
        fields = "".join(f"\n  {f.field}: {f.reason}" for f in exc.fields)
        raise fail(exc.message + fields) from None


@cli.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed demo organisations and print credentials.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    migrate: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate",
            help="Apply migrations first (default: only with the embedded database).",
        ),
    ] = None,
) -> None:
    """Serve the web console, account pages and API."""
    import uvicorn

    from app.factory import create_app
    from app.logs import configure_logging
    from app.runtime import admin_url, orm

    settings = load_settings(host=host, port=port)
    configure_logging(settings.log_level, json_lines=settings.log_json and not sys.stderr.isatty())
    do_migrate = migrate if migrate is not None else settings.database_url is None

    try:
        with admin_url(settings) as url:
            with out.status("Preparing the database…"):
                # An external database is waited for; the embedded one is started here.
                urls = asyncio.run(
                    _ready(
                        settings, url, migrate=do_migrate, wait=settings.database_url is not None
                    )
                )
            if demo:
                from app.demo import seed_demo

                async def seed() -> list[object]:
                    async with orm(urls):
                        return list(await seed_demo())

                with out.status("Seeding demo organisations…"):
                    credentials = asyncio.run(seed())
                _print_demo(settings, credentials)
            app = create_app(settings, urls)
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                proxy_headers=True,
                server_header=False,
                # SIGTERM: requests in flight get as long as jobs do (then the embedded
                # worker, if any, releases what it still runs).
                timeout_graceful_shutdown=settings.shutdown_seconds,
            )
    except DatabaseSetupError as exc:
        raise fail(str(exc)) from None


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once.")] = 4,
    lease: Annotated[
        int, typer.Option(min=1, max=3600, help="Seconds a claimed job stays reserved.")
    ] = 30,
    name: Annotated[str | None, typer.Option(help="Worker name (default host:pid).")] = None,
    heartbeat: Annotated[
        float, typer.Option(min=0.1, max=300, help="Seconds between heartbeat rows.")
    ] = 5.0,
    health: Annotated[
        bool,
        typer.Option(
            "--health",
            help="Do not run: exit 0 when a worker of this host (or --name) wrote its "
            "heartbeat within --within seconds, 1 otherwise (a container health check).",
        ),
    ] = False,
    within: Annotated[
        float, typer.Option(min=1, help="With --health: the longest heartbeat age accepted.")
    ] = 30.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics at :PORT/metrics."),
    ] = None,
) -> None:
    """Run durable jobs (departure steps, webhooks, email) and seal audit events.

    Run as many as you like on any node; they share the work through PostgreSQL. Set
    TENANTRY_EMBEDDED_WORKER=false on the `serve` nodes when workers run separately.
    """
    from app.logs import configure_logging
    from app.runtime import tune_gc
    from app.worker import run_worker_process, worker_health
    from tenants.jobs.worker import Worker

    settings = load_settings()
    if health:
        try:
            ready, report = run_with_orm(
                settings, lambda: worker_health(name=name, within=within), migrate=False
            )
        except typer.Exit:  # the error that stopped it is printed already
            ready, report = False, "the worker's health could not be read"
        except Exception as exc:  # a health check answers, whatever went wrong
            ready, report = False, f"the database is unreachable: {type(exc).__name__}: {exc}"
        (out if ready else err).print(("ready: " if ready else "not ready: ") + report)
        raise typer.Exit(0 if ready else 1)
    configure_logging(settings.log_level, json_lines=settings.log_json and not sys.stderr.isatty())
    tune_gc(settings.gc_threshold)
    job_worker = Worker(
        name=name,
        lease_seconds=lease,
        concurrency=concurrency,
        heartbeat_seconds=heartbeat,
        shutdown_seconds=settings.shutdown_seconds,
    )
    out.print(f"worker [bold]{job_worker.name}[/bold] starting; Ctrl+C stops it")
    run_with_orm(
        settings,
        lambda: run_worker_process(job_worker, settings, metrics_port=metrics_port),
        migrate=False,
        wait_for_database=True,
    )


#: How the demo's printed credentials name each role (the console's role matrix).
ROLE_TITLES = {
    "admin": "console (admin)",
    "privacy_officer": "console (privacy)",
    "helpdesk": "console (helpdesk)",
    "auditor": "console (auditor)",
}


def _print_demo(settings: Settings, credentials: list[object]) -> None:
    from app.demo import DemoCredentials

    lines = [
        f"[bold]Tenantry[/bold] with demo data at [link]{settings.base_url}[/link]",
        "Sign in at " + settings.base_url + "/login with these (generated at this start):",
        "",
    ]
    for c in credentials:
        assert isinstance(c, DemoCredentials)
        lines += [
            f"[bold]{c.name}[/bold] ({c.slug})",
            f"  console (owner):     {c.admin_email}  password: {c.password}",
            f"  account (member):    {c.member_email}  password: {c.password}",
            *[
                f"  {ROLE_TITLES.get(role, role) + ':':<21}{email}  password: {c.password}"
                for role, email in c.roles.items()
            ],
            f"  API token (24 h):    {c.api_token}",
        ]
    first = credentials[0]
    assert isinstance(first, DemoCredentials)
    lines += [
        "",
        "Each demo departure suspends, hands over and purges within minutes of this start "
        "(Departures in the console); the privacy officer approves the admin's data-access "
        "requests (four eyes).",
        f"OpenAPI: {settings.base_url}/openapi.json",
        f"Try:     curl -H 'Authorization: Bearer {first.api_token}' '{settings.base_url}/v1/members?limit=5'",
    ]
    for line in lines:
        out.print(line, soft_wrap=True, highlight=False)


@cli.command()
def migrate() -> None:
    """Create roles and database if needed and apply pending migrations."""
    from app import database
    from app.runtime import admin_url

    settings = load_settings()

    async def main(url: str) -> list[str]:
        urls = await database.prepare_database(
            url, app_role=settings.app_role, app_database_url=settings.app_database_url
        )
        return await database.migrate(urls)

    try:
        with admin_url(settings) as url, out.status("Migrating…"):
            applied = asyncio.run(main(url))
    except DatabaseSetupError as exc:
        raise fail(str(exc)) from None
    if applied:
        for name in applied:
            out.print(f"[green]applied[/green] {name}")
    else:
        out.print("The schema is up to date.")


@org_cli.command("create")
def org_create(
    slug: Annotated[str, typer.Argument(help="Short name used in URLs, e.g. acme.")],
    name: Annotated[str, typer.Option(help="Display name.", callback=name_option)],
    kind: Annotated[str, typer.Option(help="employer or school.")] = "employer",
    domain: Annotated[
        list[str] | None,
        typer.Option(help="Email domain (repeatable); pending until proven with a DNS TXT record."),
    ] = None,
    owner: Annotated[
        str | None, typer.Option(help="Email of the first owner; they sign in through SSO.")
    ] = None,
) -> None:
    """Create an organisation with its root unit, audit chain and (optionally) first owner."""
    from tenants import db
    from tenants.actors import system_actor
    from tenants.domains.models import Domain
    from tenants.domains.rules import record_names, record_value
    from tenants.domains.service import list_domains
    from tenants.ids import OrgId
    from tenants.members.roles import ANY_ASSIGNER
    from tenants.members.service import NewMember, create_member
    from tenants.organisations import service
    from tenants.organisations.models import OrganisationKind
    from tenants.permissions import Role
    from tenants.units.models import Unit

    try:
        kind_value = OrganisationKind(kind)
    except ValueError:
        raise fail("--kind must be employer or school", 2) from None

    async def work() -> object:
        actor = system_actor("cli")
        org = await service.create_organisation(
            slug=slug,
            name=name,
            kind=kind_value,
            domains=list(domain or []),
            actor=actor,
        )
        if owner:
            async with db.tenant_transaction(OrgId(org.id)):
                root = await Unit.get(parent_id=None)
                await create_member(
                    NewMember(
                        email=owner, name=owner.split("@")[0], unit_id=root.id, roles=(Role.OWNER,)
                    ),
                    actor=actor,
                    assigner=ANY_ASSIGNER,
                )
        async with db.tenant_transaction(OrgId(org.id)):
            pending.extend(await list_domains())
        return org

    pending: list[Domain] = []
    org = run_with_orm(load_settings(), work)
    out.print(f"[green]created[/green] organisation {slug} ({getattr(org, 'id', '')})")
    for added in pending:
        out.print(
            f"to prove {added.name}, publish the TXT record "
            f"[bold]{record_value(added.token)}[/bold] at {' or '.join(record_names(added.name))}"
            f", then verify it (console, Domains; or POST /v1/domains/{added.name}/verify)"
        )
    if owner:
        out.print(
            f"{owner} is its owner; they sign in at /login/{slug} once SSO is set up, "
            "or create a break-glass admin with `tenantry admin create-local`."
        )


@token_cli.command("create")
def token_create(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    name: Annotated[str, typer.Option(help="What the token is for.", callback=name_option)],
    scope: Annotated[
        list[str] | None, typer.Option(help="Permission scope (repeatable); default all.")
    ] = None,
    expires_days: Annotated[int | None, typer.Option(min=1, max=3650, help="Expiry in days.")] = 90,
) -> None:
    """Create an API token; it is printed once and never shown again."""
    from tenants import db
    from tenants.actors import system_actor
    from tenants.members.roles import ANY_ASSIGNER
    from tenants.organisations import service as organisations
    from tenants.permissions import Permission
    from tenants.tokens import service

    async def work() -> str:
        org_id = await organisations.id_by_slug(org)
        if org_id is None:
            raise fail(f"no organisation with slug {org!r}")
        async with db.tenant_transaction(org_id):
            _, text = await service.create_token(
                name,
                scope or [p.value for p in Permission],
                expires_in=timedelta(days=expires_days) if expires_days else None,
                actor=system_actor("cli"),
                # The operator at the command line (break-glass): any scope.
                issuer=ANY_ASSIGNER,
            )
        return text

    text = run_with_orm(load_settings(), work)
    out.print(f"[yellow]API token for {org}[/yellow] (shown once; store it now):")
    out.print(text, soft_wrap=True, highlight=False)


@admin_cli.command("create-local")
def admin_create_local(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    email: Annotated[str, typer.Option(help="The administrator's email.")],
    name: Annotated[
        str, typer.Option(help="Display name.", callback=name_option)
    ] = "Emergency administrator",
) -> None:
    """Create (or reset) the break-glass local administrator; prints a generated password once.

    Break-glass sessions last at most an hour, are flagged in the console and audited;
    use them when the identity provider is down, not as a daily account.
    """
    from tenants import db
    from tenants.actors import system_actor
    from tenants.members.lifecycle import MemberStatus
    from tenants.members.models import Member
    from tenants.members.roles import ANY_ASSIGNER
    from tenants.members.service import NewMember, create_member
    from tenants.organisations import service as organisations
    from tenants.permissions import Role
    from tenants.sessions import passwords
    from tenants.units.models import Unit

    async def work() -> str:
        org_id = await organisations.id_by_slug(org)
        if org_id is None:
            raise fail(f"no organisation with slug {org!r}")
        actor = system_actor("cli")
        password = passwords.generate_password()
        async with db.tenant_transaction(org_id):
            member = await Member.filter(email=email.strip().lower()).first()
            if member is None:
                root = await Unit.get(parent_id=None)
                member = await create_member(
                    NewMember(
                        email=email,
                        name=name,
                        unit_id=root.id,
                        roles=(Role.OWNER,),
                        status=MemberStatus.ACTIVE,
                    ),
                    actor=actor,
                    assigner=ANY_ASSIGNER,
                )
            await passwords.set_password(member, password, break_glass=True, actor=actor)
        return password

    password = run_with_orm(load_settings(), work)
    out.print(
        Panel.fit(
            f"email:    {email}\npassword: {password}\nsign in:  /login/{org}?break_glass=1",
            title="Break-glass administrator (shown once)",
            border_style="red",
        )
    )


@audit_cli.command("verify")
def audit_verify(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="A head SEQ:HASH printed by an earlier run; catches events cut from the end."
        ),
    ] = None,
) -> None:
    """Seal pending audit events, then walk the organisation's hash chain and name the first
    broken event; events still waiting to be sealed are counted, not an error."""
    from tenants import db
    from tenants.audit import sealer, service
    from tenants.audit.chain import ChainHead, Verification
    from tenants.organisations import service as organisations

    expected = None
    if expect_head:
        try:
            expected = ChainHead.parse(expect_head)
        except ValueError as exc:
            raise fail(f"--expect-head: {exc}", 2) from None

    async def work() -> Verification:
        org_id = await organisations.id_by_slug(org)
        if org_id is None:
            raise fail(f"no organisation with slug {org!r}")
        try:
            # Waits for a running service's sealer, so what was written before is chained.
            await sealer.seal_all(wait=True)
        except ExceptionGroup as exc:
            out.print(
                f"[yellow]sealing did not complete[/yellow]: {exc}; verifying the chain as it is"
            )
        async with db.tenant_transaction(org_id):
            return await service.verify(expected)

    with out.status("Sealing pending events and verifying the audit chain…"):
        result = run_with_orm(load_settings(), work)
    pending = f"; {result.pending} pending (recorded, not sealed yet)"
    if result.broken is None:
        out.print(f"[green]intact[/green]: {result.checked} events{pending}; head:")
        out.print(str(result.head), soft_wrap=True, highlight=False)
        out.print(
            "[dim]Keep the head; pass it as --expect-head next time to detect truncation.[/dim]"
        )
        return
    out.print(f"[red]broken at event {result.broken.seq}[/red]: {result.broken.reason}")
    out.print(f"{result.checked} events verified before it{pending}.")
    raise typer.Exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
