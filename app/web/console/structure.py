"""The organisation's structure: the unit tree (create, rename, move, delete), groups, products."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members import service as members
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.products.models import Product
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
            return ctx.render("console/units.html", q=text, found=found)
        chosen = params.get("parent")
        shown = await units.unit_page(
            _unit_id(chosen, "parent") if chosen else None,
            cursor=params.get("cursor") or None,
            limit=UNITS_SHOWN,
        )
        if chosen and ctx.request.headers.get("hx-request") == "true":
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
        if ctx.request.headers.get("hx-request") == "true":
            return ctx.render("console/unit_edit_forms.html", unit=unit)
        return ctx.render("console/unit_edit.html", unit=unit, crumbs=await units.ancestors(unit))

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_create(ctx: PageContext) -> Response:
        parent = _unit_id(ctx.form.get("parent_id"), "parent_id")
        name = (ctx.form.get("name") or "").strip()
        if not name:
            raise InvalidInputError(
                "give the unit a name", fields=[FieldProblem("name", "is empty")]
            )
        unit = await units.create_unit(name[:200], parent, actor=ctx.actor)
        return ctx.redirect("/console/units", f"Created unit {unit.name}.")

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_move(ctx: PageContext) -> Response:
        unit = await units.move_unit(
            _unit_id(ctx.request.path_params["id"], "unit"),
            _unit_id(ctx.form.get("parent_id"), "parent_id"),
            actor=ctx.actor,
        )
        return ctx.redirect("/console/units", f"Moved {unit.name}.")

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_rename(ctx: PageContext) -> Response:
        name = (ctx.form.get("name") or "").strip()
        if not name:
            raise InvalidInputError(
                "give the unit a name", fields=[FieldProblem("name", "is empty")]
            )
        unit = await units.rename_unit(
            _unit_id(ctx.request.path_params["id"], "unit"), name[:200], actor=ctx.actor
        )
        return ctx.redirect("/console/units", f"Renamed to {unit.name}.")

    @page(web, permission=Permission.UNITS_WRITE)
    async def unit_delete(ctx: PageContext) -> Response:
        unit = await units.get_unit(_unit_id(ctx.request.path_params["id"], "unit"))
        count = await Member.filter(unit_id=unit.id).count()
        children = await Unit.filter(parent_id=unit.id).count()
        if not ctx.confirmed:
            return ctx.render("console/unit_delete.html", unit=unit, count=count, children=children)
        moved = 0
        if count:
            if not ctx.can(Permission.MEMBERS_WRITE):
                raise InvalidInputError("your role may not move the unit's members")
            target = _unit_id(ctx.form.get("unit_id"), "unit_id")
            moved = await members.move_unit_members(unit.id, target, actor=ctx.actor)
        await units.delete_unit(unit.id, actor=ctx.actor)
        return ctx.redirect(
            "/console/units",
            f"Deleted the unit {unit.name}"
            + (f" after moving its {moved} member(s)." if moved else "."),
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
