"""The console's "Provisioning (SCIM)" page: the endpoint an identity provider provisions
through, the organisation's SCIM tokens (create, rotate, revoke; a token is shown once),
and the provisioning rules (unit attribute, default unit, deprovisioning, groups)."""

from __future__ import annotations

import uuid

from markupsafe import Markup
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.names import actor_links
from app.web.pages import PageContext, Web, page
from tenants.errors import FieldProblem, InvalidInputError
from tenants.permissions import Permission
from tenants.scim import service as scim
from tenants.scim.documents import UNIT_ATTRIBUTES
from tenants.scim.models import Deprovisioning
from tenants.tokens.models import ApiToken
from tenants.tokens.service import FormAlreadySentError
from tenants.units.models import Unit

PAGE = "/console/provisioning"


def rules_from(form: dict[str, str]) -> scim.Rules:
    """Form fields to provisioning rules; InvalidInputError naming the bad field."""
    try:
        deprovisioning = Deprovisioning(form.get("deprovisioning", ""))
    except ValueError:
        raise InvalidInputError(
            "choose what deprovisioning does",
            fields=[FieldProblem("deprovisioning", "expected suspend or departure")],
        ) from None
    raw_unit = form.get("default_unit_id") or ""
    try:
        default_unit = uuid.UUID(raw_unit) if raw_unit else None
    except ValueError:
        raise InvalidInputError(
            "choose a unit", fields=[FieldProblem("default_unit_id", "is not a unit")]
        ) from None
    return scim.Rules(
        unit_attribute=form.get("unit_attribute", "department"),
        default_unit_id=default_unit,
        deprovisioning=deprovisioning,
        adopt_groups=form.get("adopt_groups") == "on",
    )


def _token_id(ctx: PageContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.form.get("token_id", ""))
    except ValueError:
        raise InvalidInputError(
            "choose a token", fields=[FieldProblem("token_id", "is not a token")]
        ) from None


def _last_used(ctx: PageContext, token: ApiToken) -> str:
    if token.last_used_at is None:
        return "It has not been used yet."
    return Markup("It was last used {}.").format(ctx.time(token.last_used_at))


def routes(web: Web) -> list[BaseRoute]:
    async def render(ctx: PageContext, new_token: str | None = None) -> Response:
        tokens = await scim.list_tokens()
        rules = await scim.get_rules()
        return ctx.render(
            "console/provisioning.html",
            endpoint=f"{web.settings.base_url}/scim/v2",
            tokens=tokens,
            creators=await actor_links([t.created_by for t in tokens]),
            rules=rules,
            default_unit=(
                await Unit.get_or_none(id=rules.default_unit_id)
                if rules.default_unit_id is not None
                else None
            ),
            unit_attributes=UNIT_ATTRIBUTES,
            new_token=new_token,
            # A reload of the page that showed a new token sends its form again: the id
            # tells it apart from a new form (``tokens.create_token``).
            form_id=uuid.uuid4(),
        )

    @page(web, permission=Permission.SCIM_READ)
    async def provisioning_page(ctx: PageContext) -> Response:
        return await render(ctx)

    @page(web, permission=Permission.SCIM_WRITE)
    async def create_token(ctx: PageContext) -> Response:
        try:
            _, text = await scim.create_token(
                ctx.form.get("name", ""), actor=ctx.actor, form=ctx.sent_form_id
            )
        except FormAlreadySentError as sent:
            # A reload of the page that showed the token sends the form again.
            return ctx.redirect(
                PAGE,
                f"This form was already sent: it made the SCIM token {sent.token.name}, whose"
                " text was shown once and cannot be shown again. If it was not entered at the"
                " identity provider, rotate that token.",
            )
        return await render(ctx, new_token=text)

    @page(web, permission=Permission.SCIM_WRITE)
    async def rotate_token(ctx: PageContext) -> Response:
        token_id = _token_id(ctx)
        if not ctx.confirmed:
            named = await scim.get_token(token_id)
            return ctx.confirm(
                title=f"Rotate the SCIM token {named.name}?",
                consequences=[
                    "It stops working at once: the identity provider gets 401 until the new"
                    " token, shown on the next page once, is entered there; joiners and"
                    " leavers wait meanwhile.",
                    _last_used(ctx, named),
                ],
                button=f"Rotate {named.name}",
                back=PAGE,
            )
        _, text = await scim.rotate_token(token_id, actor=ctx.actor)
        return await render(ctx, new_token=text)

    @page(web, permission=Permission.SCIM_WRITE)
    async def revoke_token(ctx: PageContext) -> Response:
        token_id = _token_id(ctx)
        if not ctx.confirmed:
            named = await scim.get_token(token_id)
            used = _last_used(ctx, named)
            return ctx.confirm(
                title=f"Revoke the SCIM token {named.name}?",
                consequences=[
                    "The identity provider that holds it can no longer create, change or"
                    " deactivate members here: joiners and leavers stop arriving until it is"
                    " given a new token.",
                    used,
                    "This cannot be undone; a new token has to be created and entered at the"
                    " identity provider.",
                ],
                button=f"Revoke {named.name}",
                back=PAGE,
            )
        token = await scim.revoke_token(token_id, actor=ctx.actor)
        return ctx.redirect(PAGE, f"Revoked the SCIM token {token.name}.")

    @page(web, permission=Permission.SCIM_WRITE)
    async def save_rules(ctx: PageContext) -> Response:
        await scim.save_rules(rules_from(ctx.form), actor=ctx.actor)
        return ctx.redirect(PAGE, "Saved the provisioning rules.")

    return [
        Route(PAGE, provisioning_page, methods=["GET"]),
        Route(f"{PAGE}/tokens", create_token, methods=["POST"]),
        Route(f"{PAGE}/tokens/rotate", rotate_token, methods=["POST"]),
        Route(f"{PAGE}/tokens/revoke", revoke_token, methods=["POST"]),
        Route(f"{PAGE}/rules", save_rules, methods=["POST"]),
    ]
