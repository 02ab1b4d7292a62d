"""The organisation's structure: the unit tree (create, rename, move, delete), groups, products."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import REFUSED, PageContext, Web, page
from tenants import db
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members import service as members
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.products.models import Product
from tenants.text import counted
from tenants.units import service as units
from tenants.units.models import Unit

#: Units listed per page of siblings or of search matches.
UNITS_SHOWN = 50


def _unit_id(value: str | None, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise InvalidInputError(
            "choose a unit", fields=[FieldProblem(field, "is not a unit")]
        ) from None


def _target_unit(value: str | None, deleted: uuid.UUID) -> uuid.UUID:
    """The unit chosen to take the members of the unit being deleted."""
    if not value:
        raise InvalidInputError(
            "choose the unit its members move to",
            fields=[FieldProblem("unit_id", "choose one of the matches")],
        )
    target = _unit_id(value, "unit_id")
    if target == deleted:
        raise InvalidInputError(
            "its members cannot move to the unit being deleted",
            fields=[FieldProblem("unit_id", "is the unit being deleted")],
        )
    return target


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.UNITS_READ)
    async def unit_tree(ctx: PageContext) -> Response:
        # Sized by the page, not the tree: one unit (the root, or ``parent``) and a page of
        # its children; deeper levels are read when opened (htmx asks for ``parent`` and
        # gets the fragment), a search (``q``) shows the units whose name contains it.
        params = ctx.request.query_params
        text = (params.get("q") or "").strip()[:200]
        if text:
            found = await units.search_units(text, limit=UNITS_SHOWN)
            return ctx.render(
                "console/units.html",
                q=text,
                found=found,
                # Where each found unit is: units named alike under different parents.
                unit_places=await units.trails(found.items, with_own=False),
            )
        chosen = params.get("parent")
        shown = await units.unit_page(
            _unit_id(chosen, "parent") if chosen else None,
            cursor=params.get("cursor") or None,
            limit=UNITS_SHOWN,
        )
        if chosen and ctx.is_htmx:
            return ctx.render(
                "console/unit_children.html",
                parent=shown.unit,
                children=shown.children,
                continued=bool(params.get("cursor")),
            )
        return ctx.render(
            "console/units.html",
            q="",
            parent=shown.unit,
            children=shown.children,
            crumbs=shown.ancestors,
        )

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_edit(ctx: PageContext) -> Response:
        # A unit's rename, move and delete forms: the units page reads them when an admin
        # opens "Edit" (htmx gets the forms alone), a browser without scripts follows the
        # link to this page, under the unit's ancestors.
        unit = await units.get_unit(_unit_id(ctx.request.path_params["id"], "unit"))
        if ctx.is_htmx:
            return ctx.render("console/unit_edit_forms.html", unit=unit)
        return ctx.render("console/unit_edit.html", unit=unit, crumbs=await units.ancestors(unit))

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_create(ctx: PageContext) -> Response:
        # No "Under" chosen: under the organisation's root unit.
        chosen = ctx.form.get("parent_id")
        parent = _unit_id(chosen, "parent_id") if chosen else None
        name = (ctx.form.get("name") or "").strip()
        if not name:
            raise InvalidInputError(
                "give the unit a name", fields=[FieldProblem("name", "is empty")]
            )
        unit = await units.create_unit(name, parent, actor=ctx.actor)
        return ctx.redirect("/console/units", f"Created unit {unit.name}.")

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_move(ctx: PageContext) -> Response:
        unit_id = _unit_id(ctx.request.path_params["id"], "unit")
        chosen = ctx.form.get("parent_id")
        if not chosen:
            raise await units.no_parent_chosen(unit_id, ctx.form.get("parent_id_q") or "")
        unit = await units.move_unit(unit_id, _unit_id(chosen, "parent_id"), actor=ctx.actor)
        return ctx.redirect("/console/units", f"Moved {unit.name}.")

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_rename(ctx: PageContext) -> Response:
        name = (ctx.form.get("name") or "").strip()
        if not name:
            raise InvalidInputError(
                "give the unit a name", fields=[FieldProblem("name", "is empty")]
            )
        unit = await units.rename_unit(
            _unit_id(ctx.request.path_params["id"], "unit"), name, actor=ctx.actor
        )
        return ctx.redirect("/console/units", f"Renamed to {unit.name}.")

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_delete(ctx: PageContext) -> Response:
        """The confirmation page (what deleting does, and where the unit's members go),
        then the deletion. A refused confirmation comes back as this page, the error
        beside the field (422; 200 for htmx, which swaps only a 2xx answer), with nothing
        deleted: its form is on a POST-only URL, which a redirect back could not open."""
        unit = await units.get_unit(_unit_id(ctx.request.path_params["id"], "unit"))
        count = await Member.filter(unit_id=unit.id).count()
        children = await Unit.filter(parent_id=unit.id).count()

        def confirmation(http_status: int = 200, **refusal: Any) -> Response:
            return ctx.render(
                "console/unit_delete.html",
                http_status,
                unit=unit,
                count=count,
                children=children,
                **refusal,
            )

        if not ctx.confirmed:
            return confirmation()
        moved = 0
        if count:
            try:
                if not ctx.can(Permission.MEMBERS_WRITE):
                    raise InvalidInputError("your role may not move the unit's members")
                target = _target_unit(ctx.form.get("unit_id"), unit.id)
                # Refused (a target that does not exist) before anything is written.
                moved = await members.move_unit_members(unit.id, target, actor=ctx.actor)
            except InvalidInputError as error:
                refused = 200 if ctx.is_htmx else 422
                return confirmation(
                    refused,
                    flash=f"{REFUSED} {error.message}.",
                    flash_error=True,
                    form_errors={f.field: f.reason for f in error.fields},
                    form_values=dict(ctx.form),
                )
        await units.delete_unit(unit.id, actor=ctx.actor)
        return ctx.redirect(
            "/console/units",
            f"Deleted the unit {unit.name}"
            + (f" after moving its {counted(moved, 'member')}." if moved else "."),
        )

    @page(web, permission=Permission.PRODUCTS_READ)
    async def product_list(ctx: PageContext) -> Response:
        products = await Product.all().order_by("name")
        sizes = {
            r["product_id"]: r["n"]
            for r in await db.fetch(
                "SELECT product_id, count(*) AS n FROM product_accounts WHERE status = 'assigned' GROUP BY 1"
            )
        }
        return ctx.render("console/products.html", products=products, sizes=sizes)

    return [
        Route("/console/units", unit_tree, methods=["GET"]),
        Route("/console/units", unit_create, methods=["POST"]),
        Route("/console/units/{id}/edit", unit_edit, methods=["GET"]),
        Route("/console/units/{id}/move", unit_move, methods=["POST"]),
        Route("/console/units/{id}/rename", unit_rename, methods=["POST"]),
        Route("/console/units/{id}/delete", unit_delete, methods=["POST"]),
        Route("/console/products", product_list, methods=["GET"]),
    ]
