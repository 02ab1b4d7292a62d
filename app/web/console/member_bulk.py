"""Many members at once: the bulk actions of the members list (confirmed first, naming
the count), CSV export of the filtered list, and CSV import with a dry run."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.downloads import StreamedDownload, attachment
from app.web.console.members import filter_query, member_filter
from app.web.pages import PageContext, Web, page
from tenants.csvcells import csv_line
from tenants.errors import FieldProblem, InvalidInputError
from tenants.groups.service import get_group
from tenants.members import imports, service
from tenants.members.bulk import UNCHANGED_BECAUSE, BulkAction, apply_bulk, unchanged_by
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.policy import moves
from tenants.policy import service as policy
from tenants.products.service import get_product
from tenants.text import counted
from tenants.units.models import Unit
from tenants.units.service import get_unit, root_unit

#: The permission each bulk action needs besides members:write.
NEEDS = {
    BulkAction.MOVE: Permission.MEMBERS_WRITE,
    BulkAction.ADD_TO_GROUP: Permission.GROUPS_WRITE,
    BulkAction.ASSIGN_PRODUCT: Permission.PRODUCTS_WRITE,
    BulkAction.SUSPEND_PRODUCT: Permission.PRODUCTS_WRITE,
    BulkAction.SUSPEND: Permission.MEMBERS_LIFECYCLE,
}
EXPORT_COLUMNS = ["email", "name", "unit", "manager_email", "roles", "status"]
#: The largest CSV the console's import form takes (as the API's limit).
IMPORT_MAX_CHARS = 2 * 1024 * 1024


def _selected(form: dict[str, str]) -> list[uuid.UUID]:
    ids = []
    for key, value in form.items():
        if key.startswith("member_") and value == "1":
            try:
                ids.append(uuid.UUID(key.removeprefix("member_")))
            except ValueError:
                continue
    return ids


def _target(form: dict[str, str], field: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(form.get(field) or "")
    except ValueError:
        return None


async def bulk_move_effects(ids: list[uuid.UUID], unit_id: uuid.UUID) -> list[str]:
    """The bulk move's totals as confirmation lines: whose settings change and, per
    setting, for how many (each member resolved before and after)."""
    totals = await moves.preview_bulk_move(ids, unit_id)
    if not totals.changed:
        return ["None of their settings change."]
    cat = await policy.catalogue()
    shown = totals.changed[:20]
    more = f" and {len(totals.changed) - 20} more" if len(totals.changed) > 20 else ""
    lines = [f"Settings change for {len(totals.changed)} of them: {', '.join(shown)}{more}."]
    for key, count in sorted(totals.by_setting.items(), key=lambda kv: (-kv[1], kv[0])):
        title = cat[key].title if key in cat else key
        lines.append(f"{title} changes for {counted(count, 'member')}.")
    return lines


#: What a bulk action did, for the message after it ({n}: how many members it changed).
DONE = {
    BulkAction.MOVE: "Moved {n}",
    BulkAction.ADD_TO_GROUP: "Added {n} to the group",
    BulkAction.ASSIGN_PRODUCT: "Gave {n} an account",
    BulkAction.SUSPEND_PRODUCT: "Suspended the account of {n}",
    BulkAction.SUSPEND: "Suspended {n}",
}


def _listed(names: list[str]) -> str:
    return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _digest(text: str) -> str:
    """What a dry run checked, for the Import button to carry back (not a secret)."""
    return hashlib.sha256(text.encode()).hexdigest()


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.MEMBERS_WRITE)
    async def bulk(ctx: PageContext) -> Response:
        form = ctx.form
        try:
            action = BulkAction(form.get("action", ""))
        except ValueError:
            raise InvalidInputError(
                "choose an action", fields=[FieldProblem("action", "choose one")]
            ) from None
        if not ctx.can(NEEDS[action]):
            raise InvalidInputError("your role does not allow this action")
        ids = _selected(form)
        field = {
            BulkAction.MOVE: "unit_id",
            BulkAction.ADD_TO_GROUP: "group_id",
            BulkAction.ASSIGN_PRODUCT: "product_id",
            BulkAction.SUSPEND_PRODUCT: "product_id",
        }.get(action)
        target = _target(form, field) if field else None
        keep = {k.removeprefix("keep_"): v for k, v in form.items() if k.startswith("keep_")}
        back = "/console/members?" + urlencode(keep)
        if not ctx.confirmed:
            if not ids:
                raise InvalidInputError(
                    "select at least one member", fields=[FieldProblem("members", "none selected")]
                )
            what = {
                BulkAction.MOVE: "Move {n} to {t}",
                BulkAction.ADD_TO_GROUP: "Add {n} to the group {t}",
                BulkAction.ASSIGN_PRODUCT: "Give {n} an account in {t}",
                BulkAction.SUSPEND_PRODUCT: "Suspend the {t} account of {n}",
                BulkAction.SUSPEND: "Suspend {n}: they can no longer sign in and their sessions end",
            }[action]
            name = ""
            if action is BulkAction.MOVE and target:
                name = (await get_unit(target)).name
            elif action is BulkAction.ADD_TO_GROUP and target:
                name = (await get_group(target)).name
            elif field == "product_id" and target:
                name = (await get_product(target)).name
            elif field:
                raise InvalidInputError(
                    f"choose the {field.removesuffix('_id')} for this action",
                    fields=[FieldProblem(field, "choose one")],
                )
            same = await unchanged_by(action, ids, target=target)
            acted = [i for i in ids if i not in same]
            if not acted:
                raise InvalidInputError(
                    f"nothing to do: each selected member {UNCHANGED_BECAUSE[action]}",
                    fields=[FieldProblem("members", UNCHANGED_BECAUSE[action])],
                )
            chosen = await service.names_of(acted)
            left = await service.names_of([i for i in ids if i in same])
            effects = []
            if action is BulkAction.MOVE and target:
                effects = await bulk_move_effects(acted, target)
            heading = what.format(n=counted(len(acted), "member"), t=name)
            return ctx.confirm(
                title=heading + "?",
                consequences=[
                    heading + ":",
                    _listed(chosen),
                    *(
                        [f"Left as they are ({UNCHANGED_BECAUSE[action]}): {_listed(left)}."]
                        if left
                        else []
                    ),
                    *effects,
                    "Each change is recorded in the audit log; all of them happen, or none.",
                ],
                button=heading.split(":")[0],
                # Cancel returns to the list with the same members still ticked.
                back="/console/members?"
                + urlencode({**keep, "picked": ",".join(str(i) for i in ids)}),
            )
        changed = await apply_bulk(
            action, ids, target=target, actor=ctx.actor, by=ctx.permissions
        )
        done = DONE[action].format(n=counted(changed, "member"))
        rest = len(ids) - changed
        return ctx.redirect(
            back,
            f"{done}; {rest} of the {len(ids)} selected left as they were." if rest else f"{done}.",
        )

    @page(web, permission=Permission.MEMBERS_READ)
    async def export(ctx: PageContext) -> Response:
        filters = member_filter(ctx.request.query_params)
        # Read inside this request's tenant transaction (a batch of members, then their
        # units and managers in one query each), then stream the text.
        lines = [csv_line(list(EXPORT_COLUMNS))]
        async for batch in service.iter_member_batches(filters):
            unit_ids = {m.unit_id for m in batch}
            units = {u.id: u.name for u in await Unit.filter(id__in=list(unit_ids))}
            manager_ids = {m.manager_id for m in batch if m.manager_id}
            managers = {m.id: m.email for m in await Member.filter(id__in=list(manager_ids))}
            for m in batch:
                lines.append(
                    csv_line(
                        [
                            m.email,
                            m.name,
                            units.get(m.unit_id, ""),
                            managers.get(m.manager_id, "") if m.manager_id else "",
                            " ".join(m.roles),
                            m.status.value,
                        ]
                    )
                )

        async def body() -> AsyncIterator[str]:
            for line in lines:
                yield line

        suffix = "-".join(v for v in filter_query(filters).values())[:40]
        return StreamedDownload(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": attachment(f"members{'-' + suffix if suffix else ''}.csv"),
                "Cache-Control": "no-store",
            },
        )

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def import_form(ctx: PageContext) -> Response:
        return ctx.render("console/members_import.html", report=None, text="")

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def import_file(ctx: PageContext) -> Response:
        text = ctx.form.get("csv_text", "")
        if not text.strip():
            # The dry run of nothing showed nothing, not even that there was nothing.
            raise InvalidInputError(
                "there is nothing to import",
                fields=[FieldProblem("csv_text", "is empty: paste the CSV, its header line first")],
            )
        if len(text) > IMPORT_MAX_CHARS:
            raise InvalidInputError(
                "the file is too large", fields=[FieldProblem("csv_text", "is larger than 2 MB")]
            )
        wanted = ctx.form.get("apply") == "1"
        checked = _digest(text)
        # The Import button applies what its dry run showed, and nothing else: text edited
        # after the check (an Owner line added) was imported unchecked under a button
        # still reading "Import 1 new". Changed text is checked again instead.
        changed = wanted and ctx.form.get("checked") != checked
        default_unit = (await root_unit()).id
        report = await imports.import_members(
            text,
            default_unit=default_unit,
            apply=False,
            actor=ctx.actor,
            assigner=ctx.permissions,
            field="csv_text",
        )
        if not wanted or report.refused or changed:
            # A dry run, an apply refused before anything is written, or text changed since
            # its check: the report, per line.
            refused = wanted and bool(report.refused)
            return ctx.render(
                "console/members_import.html",
                http_status=422 if refused else 409 if changed else 200,
                report=report,
                text=text,
                refused_apply=refused,
                changed_since_check=changed and not refused,
                checked=checked,
            )
        report = await imports.import_members(
            text, default_unit=default_unit, apply=True, actor=ctx.actor, assigner=ctx.permissions
        )
        return ctx.redirect(
            "/console/members",
            f"Imported: {report.count('created')} created, {report.count('changed')} changed, "
            f"{report.count('unchanged')} unchanged.",
        )

    return [
        Route("/console/members/bulk", bulk, methods=["POST"]),
        Route("/console/members/export.csv", export, methods=["GET"]),
        Route("/console/members/import", import_form, methods=["GET"]),
        Route("/console/members/import", import_file, methods=["POST"]),
    ]
