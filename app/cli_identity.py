"""``tenantry identity …``: the identity backend from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tenants.text import counted

if TYPE_CHECKING:
    from tenants.identity.setup import SetupCheck
    from tenants.identity.sync import ReconcileReport

identity_cli = typer.Typer(
    help="The identity backend (Keycloak mirroring).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def drift_table(report: ReconcileReport) -> Table:
    """The drift as a table: what, who or which, and how it differs."""
    title = "Drift (dry run: nothing changed)" if report.dry_run else "Drift (fixed)"
    table = Table(title=title)
    table.add_column("kind", style="yellow")
    table.add_column("subject")
    table.add_column("difference")
    for item in report.drift:
        table.add_row(item.kind.value, item.label, item.detail)
    return table


def setup_table(checks: list[SetupCheck]) -> Table:
    """The setup checks as a table: each by name, whether it holds, what was found, the fix."""
    table = Table(title="Keycloak realm setup")
    table.add_column("check")
    table.add_column("status")
    table.add_column("found")
    table.add_column("fix")
    for check in checks:
        status = "[green]ok[/green]" if check.ok else "[red]failing[/red]"
        if check.changed:
            status = "[green]fixed[/green]"
        table.add_row(check.name.value, status, check.detail, check.fix)
    return table


@identity_cli.command("setup")
def setup(
    org: Annotated[str, typer.Option("--org", help="The organisation's slug.")],
    check_only: Annotated[
        bool, typer.Option("--check", help="Report what is missing without changing the realm.")
    ] = False,
    unmanaged_attributes: Annotated[
        bool,
        typer.Option(
            "--unmanaged-attributes",
            help="Keep Tenantry's attributes by setting the realm's unmanagedAttributePolicy "
            "to ADMIN_EDIT instead of declaring them in the user profile.",
        ),
    ] = False,
) -> None:
    """Check the organisation's Keycloak realm and prepare it for mirroring: the client's
    credentials and realm-management roles, the server version, Organizations switched
    on, the user profile keeping tenantry_member_id and tenantry_org_id, and the
    organisation's domain where Keycloak needs one. Exits 1 while a check fails."""
    from app.cli import fail, load_settings, out, run_with_orm
    from tenants.actors import system_actor
    from tenants.identity import sync
    from tenants.identity.setup import UnmanagedPolicy
    from tenants.organisations.service import id_by_slug

    settings = load_settings()
    sync.configure(settings.secret_key)
    policy = UnmanagedPolicy.ADMIN_EDIT if unmanaged_attributes else UnmanagedPolicy.DECLARE

    async def work() -> list[SetupCheck]:
        org_id = await id_by_slug(org)
        if org_id is None:
            raise fail(f"there is no organisation {org!r}")
        return await sync.set_up(
            org_id, prepare=not check_only, policy=policy, actor=system_actor("cli")
        )

    checks = run_with_orm(settings, work, migrate=False)
    out.print(setup_table(checks))
    failing = [c for c in checks if not c.ok]
    if failing:
        out.print(
            f"[red]{counted(len(failing), 'check')} failing[/red]: fix them and run setup again"
        )
        raise typer.Exit(1)
    out.print(f"[green]the realm is ready[/green]: {org} is mirrored by the next reconcile")


@identity_cli.command("reconcile")
def reconcile(
    org: Annotated[str, typer.Option("--org", help="The organisation's slug.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report the drift without fixing it.")
    ] = False,
) -> None:
    """Compare the Keycloak realm with Tenantry and fix the drift (organisation, groups,
    members, enabled flags, memberships). Exits 1 on a dry run that found drift."""
    from app.cli import fail, load_settings, out, run_with_orm
    from tenants.actors import system_actor
    from tenants.identity import sync
    from tenants.organisations.service import id_by_slug

    settings = load_settings()
    sync.configure(settings.secret_key)

    async def work() -> ReconcileReport:
        org_id = await id_by_slug(org)
        if org_id is None:
            raise fail(f"there is no organisation {org!r}")
        return await sync.reconcile(org_id, fix=not dry_run, actor=system_actor("cli"))

    report = run_with_orm(settings, work, migrate=False)
    if not report.drift:
        out.print(f"[green]no drift[/green]: the identity backend mirrors {org} exactly")
        return
    out.print(drift_table(report))
    if dry_run:
        out.print(f"{counted(len(report.drift), 'difference')}; run without --dry-run to fix them")
        raise typer.Exit(1)
    for change in report.fixed:
        out.print(f"  fixed: {change}")
    out.print(f"[green]fixed {counted(len(report.drift), 'difference')}[/green]")
