"""``tenantry audit archive`` and ``tenantry audit verify-archive``: the audit chain
copied out to NDJSON with its hashes, and checked later from the file alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def register(audit_cli: typer.Typer) -> None:
    audit_cli.command("archive")(archive)
    audit_cli.command("verify-archive")(verify_archive)


def archive(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    out_path: Annotated[Path, typer.Option("--out", help="The NDJSON file to write.")],
) -> None:
    """Seal pending events, verify the organisation's chain, then write it with its hashes
    to an NDJSON file (written beside and renamed at the end: a partial file never has the
    final name). The chain stays in the database; the archive proves itself with
    ``tenantry audit verify-archive``."""
    from app.cli import fail, load_settings, out, run_with_orm
    from tenants import db
    from tenants.audit import sealer, service
    from tenants.audit.archive import archive_lines, header_for
    from tenants.audit.chain import ChainHead
    from tenants.organisations import service as organisations

    partial = out_path.with_name(out_path.name + ".partial")

    async def work() -> ChainHead:
        org_id = await organisations.id_by_slug(org)
        if org_id is None:
            raise fail(f"no organisation with slug {org!r}")
        await sealer.seal_all(wait=True)
        async with db.tenant_transaction(org_id):
            checked = await service.verify()
            if checked.broken is not None:
                raise fail(
                    f"the chain is broken at event {checked.broken.seq} "
                    f"({checked.broken.reason}); nothing archived"
                )
            header = header_for(org, str(org_id), checked.head)
            with (
                Progress(
                    TextColumn("archiving"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=out,
                ) as bar,
                partial.open("w", encoding="utf-8") as file,
            ):
                task = bar.add_task("events", total=checked.head.seq)
                async for line in archive_lines(header, service.chained_events()):
                    file.write(line + "\n")
                    bar.advance(task)
                bar.update(task, completed=checked.head.seq)
                file.flush()
                os.fsync(file.fileno())
        return checked.head

    try:
        head = run_with_orm(load_settings(), work, migrate=False)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out_path)
    out.print(f"[green]archived[/green] {head.seq} events to {out_path}; head:")
    out.print(str(head), soft_wrap=True, highlight=False)


def verify_archive(
    path: Annotated[Path, typer.Argument(help="An archive written by `tenantry audit archive`.")],
    expect_head: Annotated[
        str | None,
        typer.Option(help="A head SEQ:HASH recorded elsewhere; catches a file cut short."),
    ] = None,
) -> None:
    """Recompute the archived chain from the file alone (no database) and name the first
    event that does not hold."""
    from app.cli import fail, out
    from tenants.audit.archive import ArchiveFormatError
    from tenants.audit.archive import verify_archive as verify
    from tenants.audit.chain import ChainHead

    expected = None
    if expect_head:
        try:
            expected = ChainHead.parse(expect_head)
        except ValueError as exc:
            raise fail(f"--expect-head: {exc}", 2) from None
    try:
        with path.open(encoding="utf-8") as file:
            header, result = verify(file, expected_head=expected)
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", 2) from None
    except ArchiveFormatError as exc:
        raise fail(f"{path}: {exc}", 2) from None
    if result.broken is None:
        out.print(
            f"[green]intact[/green]: {result.checked} events of {header.organisation}, "
            f"archived {header.created_at}; head:"
        )
        out.print(str(result.head), soft_wrap=True, highlight=False)
        return
    out.print(f"[red]broken at event {result.broken.seq}[/red]: {result.broken.reason}")
    out.print(f"{result.checked} events verified before it.")
    raise typer.Exit(1)
