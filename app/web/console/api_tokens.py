"""The console's "API tokens" page: the organisation's tokens for scripts (name, scopes in
words, who made it and when, expiry, last use, state), a form to make one, and revoking
one after a confirmation naming what stops working.

A new token's text is shown once, on the page the form's POST answers with (never in a
URL, a redirect, a cookie, a log or the audit event); afterwards only its SHA-256 exists.
Each form shown carries a random id kept with the token it makes, so sending it again (a
reload of that page) makes no second token (migration 0036).
The scopes one may give are one's own (``tenants.tokens.rules.may_give``): the form shows
the others fixed, and the service refuses them whatever is posted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.names import actor_links
from app.web.console.tables import ListView
from app.web.pages import PageContext, Web, page
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError
from tenants.permissions import MACHINE_SCOPES, PRODUCT_SCOPES, Permission
from tenants.tokens import service
from tenants.tokens.models import ApiToken
from tenants.tokens.rules import NAME_MAX_LENGTH, TokenStatus, may_give, status_of

PAGE = "/console/api-tokens"
NEW = f"{PAGE}/new"


@dataclass(frozen=True, slots=True)
class Expiry:
    value: str
    label: str
    lifetime: timedelta | None


#: How long a new token lives, as the form offers it; a token that never expires is
#: offered last, with a warning.
EXPIRIES = (
    Expiry("7", "7 days", timedelta(days=7)),
    Expiry("30", "30 days", timedelta(days=30)),
    Expiry("90", "90 days", timedelta(days=90)),
    Expiry("365", "1 year", timedelta(days=365)),
    Expiry("never", "No expiry (not recommended)", None),
)
DEFAULT_EXPIRY = "90"

#: Every scope in words, as the form and the list show it (its code beside it).
SCOPE_WORDS: dict[Permission, str] = {
    Permission.CONSOLE_ACCESS: "Open the admin console (no use to a script)",
    Permission.ORGANISATION_READ: "See the organisation's details and domains",
    Permission.ORGANISATION_WRITE: "Change the organisation's details and domains",
    Permission.SSO_READ: "See the sign-in (SSO) and identity set-up",
    Permission.SSO_WRITE: "Change the sign-in (SSO) and identity set-up",
    Permission.UNITS_READ: "See units",
    Permission.UNITS_WRITE: "Create, rename, move and delete units",
    Permission.GROUPS_READ: "See groups and who is in them",
    Permission.GROUPS_WRITE: "Create, change and delete groups",
    Permission.MEMBERS_READ: "See members",
    Permission.MEMBERS_WRITE: "Add members and change their details and roles",
    Permission.MEMBERS_LIFECYCLE: "Suspend, reinstate and offboard members",
    Permission.MEMBERS_SESSIONS: "Sign members out",
    Permission.PRODUCTS_READ: "See products and product accounts",
    Permission.PRODUCTS_WRITE: "Change products, product accounts and webhooks",
    Permission.POLICIES_READ: "See policies and members' effective settings",
    Permission.POLICIES_WRITE: "Change policies",
    Permission.DEPARTURES_READ: "See departures",
    Permission.DEPARTURES_WRITE: "Start, change and cancel departures",
    Permission.JOBS_READ: "See background jobs",
    Permission.JOBS_WRITE: "Retry background jobs",
    Permission.ACCESS_READ: "See access to members' data",
    Permission.ACCESS_REQUEST: "Ask for access to a member's data",
    Permission.ACCESS_APPROVE: "Approve or deny access to members' data",
    Permission.ACCESS_REVOKE: "End access to members' data",
    Permission.PRIVACY_REQUESTS_READ: "See privacy requests",
    Permission.PRIVACY_REQUESTS_WRITE: "Work on and answer privacy requests",
    Permission.AUDIT_READ: "Read the audit log and sign-ins",
    Permission.TOKENS_READ: "See API tokens",
    Permission.TOKENS_WRITE: "Create and revoke API tokens",
    Permission.SCIM_READ: "See the SCIM provisioning set-up",
    Permission.SCIM_WRITE: "Change SCIM tokens and provisioning rules",
    Permission.SCIM_PROVISION: "Provision members and groups over SCIM, as an identity provider",
    Permission.CONTENT_READ: "See members' content items",
    Permission.CONTENT_HOLD: "Put content under legal hold and lift it",
    Permission.SETTINGS_READ: "Read members' effective settings, as a product",
    Permission.SETTINGS_WRITE: "Change members' own choices, as a product",
    Permission.CONTENT_WRITE: "Register members' content items, as a product",
    Permission.ACCESS_CHECK: "Check an admin's access to a member's data, as a product",
    Permission.CLAIMS_READ: "Add settings and roles to sign-in tokens, as an identity provider",
    Permission.CLAIMS_CALLOUT: "Answer Entra's token-issuance callout",
    Permission.PRIVACY_REQUESTS_SUBMIT: "Forward privacy requests and send export parts, as a product",
    Permission.REVIEWS_READ: "See access reviews",
    Permission.REVIEWS_WRITE: "Create and run access reviews",
    Permission.REVIEWS_DECIDE: "Decide the access-review items one reviews",
}

#: The form's groups of scopes: (legend, scopes in the order Permission declares them).
SCOPE_GROUPS: tuple[tuple[str, tuple[Permission, ...]], ...] = (
    (
        "Administration (what admins do)",
        tuple(p for p in Permission if p not in PRODUCT_SCOPES | MACHINE_SCOPES),
    ),
    ("What products do", tuple(p for p in Permission if p in PRODUCT_SCOPES)),
    ("What identity providers do", tuple(p for p in Permission if p in MACHINE_SCOPES)),
)

#: Creators that are no member, in words (``system:<what>`` references).
SYSTEM_CREATORS = {
    "system:cli": "an operator (command line)",
    "system:demo-seed": "the demo set-up",
}


def scope_words(scope: str) -> str:
    """A scope in words; a code no longer known is shown as it is."""
    try:
        return SCOPE_WORDS[Permission(scope)]
    except ValueError:
        return scope


def expiry_of(value: str) -> Expiry:
    """The form's expiry choice (none sent: the default); InvalidInputError naming
    ``expires`` for a value the form does not offer."""
    found = next((e for e in EXPIRIES if e.value == (value or DEFAULT_EXPIRY)), None)
    if found is None:
        offered = ", ".join(e.label for e in EXPIRIES)
        raise InvalidInputError(
            "choose when the token expires",
            fields=[FieldProblem("expires", f"choose one of {offered}")],
        )
    return found


def _token_id(ctx: PageContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params["id"])
    except ValueError:
        raise NotFoundError("there is no such API token") from None


def _status(ctx: PageContext) -> TokenStatus | None:
    try:
        return TokenStatus(ctx.request.query_params.get("status", ""))
    except ValueError:
        return None


def revoke_consequences(ctx: PageContext, token: ApiToken) -> list[str]:
    """What revoking ``token`` does, for the confirmation page."""
    used = (
        Markup("It was last used {}.").format(ctx.time(token.last_used_at))
        if token.last_used_at
        else "It has never been used."
    )
    return [
        f"Every script or system that uses the token {token.name} gets 401 Unauthorized"
        " from its next request to the API.",
        used,
        "This cannot be undone: to give the access back, create a new token and put it"
        " where this one was.",
    ]


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.TOKENS_READ)
    async def tokens_page(ctx: PageContext) -> Response:
        status = _status(ctx)
        view = ListView.parse(
            PAGE,
            ctx.request.query_params,
            sortable=service.SORTABLE,
            default_sort=str(service.NEWEST_FIRST),
            filters={"status": status.value if status else ""},
        )
        found = await service.list_tokens(
            status=status, sort=view.sort, cursor=view.cursor, limit=view.size
        )
        counts = await service.token_counts()
        now = datetime.now(UTC)
        links = await actor_links([t.created_by for t in found.items])
        creators = {
            ref: (SYSTEM_CREATORS.get(ref, text), href) for ref, (text, href) in links.items()
        }
        return ctx.render(
            "console/api_tokens.html",
            tokens=[(t, status_of(t.revoked_at, t.expires_at, now)) for t in found.items],
            creators=creators,
            counts=counts,
            status_filter=status,
            statuses=list(TokenStatus),
            scope_words=scope_words,
            **view.context(
                next_cursor=found.next_cursor,
                total=counts[status] if status else sum(counts.values()),
                shown=len(found.items),
            ),
        )

    @page(web, permission=Permission.TOKENS_WRITE)
    async def new_token_form(ctx: PageContext) -> Response:
        groups = [
            (legend, [(s, SCOPE_WORDS[s], may_give(ctx.permissions, s)) for s in scopes])
            for legend, scopes in SCOPE_GROUPS
        ]
        return ctx.render(
            "console/api_token_new.html",
            form_id=uuid.uuid4(),
            scope_groups=groups,
            any_beyond=any(not allowed for _, scopes in groups for _, _, allowed in scopes),
            expiries=EXPIRIES,
            default_expiry=DEFAULT_EXPIRY,
            name_max_length=NAME_MAX_LENGTH,
        )

    @page(web, permission=Permission.TOKENS_WRITE)
    async def create_token(ctx: PageContext) -> Response:
        """Make the token and answer with its text, shown this once; a refused form goes
        back to itself with the errors beside the fields (``page``), nothing written."""
        raw = await ctx.request.form()
        scopes = [str(v) for v in raw.getlist("scopes")]
        expiry = expiry_of(ctx.form.get("expires", ""))
        try:
            token, text = await service.create_token(
                ctx.form.get("name", ""),
                scopes,
                expires_in=expiry.lifetime,
                actor=ctx.actor,
                issuer=ctx.permissions,
                form=ctx.sent_form_id,
            )
        except service.FormAlreadySentError as sent:
            # A reload of the page that showed the token sends the form again.
            return ctx.redirect(
                PAGE,
                f"This form was already sent: it made the API token {sent.token.name}, whose"
                " text was shown once and cannot be shown again. If it was not stored,"
                " revoke that token and create another.",
            )
        return ctx.render(
            "console/api_token_created.html",
            token=token,
            token_text=text,
            scope_words=scope_words,
        )

    @page(web, permission=Permission.TOKENS_WRITE)
    async def revoke_token(ctx: PageContext) -> Response:
        """Ask, then revoke. A token this organisation does not have (another's, or none)
        answers 404, as the API's ids do, rather than the refused-form redirect."""
        try:
            token = await service.get_token(_token_id(ctx))
        except NotFoundError as missing:
            return web.message(
                ctx.request,
                missing.title,
                "There is no such API token in this organisation.",
                status=404,
                link=(PAGE, "Back to API tokens"),
            )
        if token.revoked_at is not None:
            return ctx.redirect(PAGE, f"The API token {token.name} was already revoked.")
        if not ctx.confirmed:
            return ctx.confirm(
                title=f"Revoke the API token {token.name}?",
                consequences=revoke_consequences(ctx, token),
                button=f"Revoke {token.name}",
                back=PAGE,
            )
        revoked = await service.revoke_token(token.id, actor=ctx.actor)
        return ctx.redirect(
            PAGE, f"Revoked the API token {revoked.name}: scripts using it now get 401."
        )

    return [
        Route(PAGE, tokens_page, methods=["GET"]),
        Route(NEW, new_token_form, methods=["GET"]),
        Route(NEW, create_token, methods=["POST"]),
        Route(f"{PAGE}/{{id}}/revoke", revoke_token, methods=["POST"]),
    ]
