"""``tenantry identity …``: the identity backend from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from tenants.identity.sync import ReconcileReport

identity_cli = typer.Typer(help="The identity backend (Keycloak mirroring).", no_args_is_help=True)


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
        out.print(f"{len(report.drift)} difference(s); run without --dry-run to fix them")
        raise typer.Exit(1)
    for change in report.fixed:
        out.print(f"  fixed: {change}")
    out.print(f"[green]fixed {len(report.drift)} difference(s)[/green]")
