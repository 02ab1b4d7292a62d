"""Organisation settings: the identity provider connection, password sign-in and the days
of notice of scheduled policy changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.problems import error_reason
from app.v1.sso import SsoConnectionIn
from app.v1.sso import connection_changes as api_connection_changes
from app.web.console.member_forms import picked_id
from app.web.numbers import whole_number
from app.web.pages import PageContext, Web, page
from tenants.domains import service as domains
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members import preferences
from tenants.organisations import service as organisations
from tenants.permissions import Permission
from tenants.policy.models import PolicyRule
from tenants.sso import safety
from tenants.sso import service as sso
from tenants.sso.models import SsoConnection
from tenants.text import counted
from tenants.units.models import Unit


def _lines(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").replace(",", "\n").splitlines() if part.strip()]


def _scopes(text: str | None) -> list[str]:
    """The Scopes field as its hint says: separated by spaces, commas or lines; empty
    entries and repeats dropped (OAuth scopes are space-delimited, RFC 6749 §3.3)."""
    return list(dict.fromkeys((text or "").replace(",", " ").split()))


def _form_problems(error: ValidationError) -> list[FieldProblem]:
    """The API model's refusals as the form's fields name them (``scopes[1]`` is the
    Scopes field), one per field, written to follow the field's name."""
    found: dict[str, str] = {}
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "form"
        if item["type"] == "string_too_long":
            reason = f"has more than {item['ctx']['max_length']} characters"
        elif item["type"] in ("missing", "string_too_short") or item.get("input") == "":
            reason = "is empty"
        elif item["type"].startswith("url_"):
            reason = "is not a web address: write it in full, as https://…"
        elif name == "scopes" and item["type"] == "string_pattern_mismatch":
            reason = f"“{item['input']}” is not a scope (letters, digits and punctuation)"
        elif name == "scopes" and item["type"] == "too_long":
            reason = f"lists more than {item['ctx']['max_length']} scopes"
        else:
            reason = error_reason(item)
            reason = reason[0].lower() + reason[1:] if reason else "is not valid"
        found.setdefault(name, reason)
    return [FieldProblem(name, reason) for name, reason in found.items()]


def connection_changes(form: dict[str, str]) -> dict[str, Any]:
    """Form fields to connection changes, validated by the API's own model
    (``SsoConnectionIn``) and turned into changes as the API turns them, so the form and
    ``PUT /v1/sso-connection`` accept the same connections; InvalidInputError naming
    each bad field. The service then applies the rules both share (the issuer is an
    https:// URL, ``tenants.sso.rules``)."""
    try:
        domains = organisations.normalise_domains(
            _lines(form.get("allowed_domains")), field="allowed_domains"
        )
    except InvalidInputError as error:
        raise InvalidInputError(
            error.message, fields=[FieldProblem("allowed_domains", f.reason) for f in error.fields]
        ) from None
    given: dict[str, Any] = {
        "issuer": form.get("issuer", "").strip(),
        "client_id": form.get("client_id", "").strip(),
        "client_secret": form.get("client_secret") or None,
        "email_claim": (form.get("email_claim") or "").strip() or "email",
        "name_claim": (form.get("name_claim") or "").strip() or "name",
        "groups_claim": (form.get("groups_claim") or "").strip() or None,
        "unit_claim": (form.get("unit_claim") or "").strip() or None,
        "allowed_domains": domains,
        "jit_provisioning": form.get("jit_provisioning") == "on",
        # A unit typed in the picker but not chosen is refused, not read as "none" (the
        # default unit was reset to the root unit unasked).
        "default_unit_id": picked_id(form, "default_unit_id", "unit"),
        "enabled": form.get("enabled") == "on",
        "sign_out_at_provider": form.get("sign_out_at_provider") == "on",
    }
    scopes = _scopes(form.get("scopes"))
    if scopes:
        given["scopes"] = scopes
    try:
        body = SsoConnectionIn.model_validate(given)
    except ValidationError as error:
        raise InvalidInputError(
            "the identity provider connection cannot be saved as it is",
            fields=_form_problems(error),
        ) from None
    return api_connection_changes(body)


#: Form fields the confirmation step asks for again instead of carrying them in the page.
SECRET_FIELDS = ("client_secret",)


def notice_days(raw: str | None) -> int:
    """Days of notice from the form; InvalidInputError naming the field unless 0 to 90."""
    days = whole_number(raw, high=90)
    if days is None:
        raise InvalidInputError(
            "the days of notice must be a whole number from 0 to 90",
            fields=[FieldProblem("policy_notice_days", "must be a whole number from 0 to 90")],
        )
    return days


def confirmed_count(form: dict[str, str]) -> int | None:
    """The count the admin confirmed on the preview step (None: not confirmed yet)."""
    raw = form.get("confirm_losing", "").strip()
    if not raw:
        return None
    count = whole_number(raw)
    if count is None:
        raise InvalidInputError(
            "the confirmation must be a count",
            fields=[FieldProblem("confirm_losing", "not a count")],
        )
    return count


def confirm_page(
    ctx: PageContext, preview: safety.Preview, *, what: str, action: str, back: str
) -> Response:
    """The preview step: who would lose sign-in (admins first) and a form that sends the
    same fields again with the count confirmed."""
    # A secret typed into the form is never written into a page: the admin types it again.
    fields = [
        (k, v) for k, v in ctx.form.items() if k not in ("csrf", "confirm_losing", *SECRET_FIELDS)
    ]
    return ctx.render(
        "console/identity_change.html",
        http_status=409 if preview.refused else 200,
        preview=preview,
        what=what,
        action=action,
        back=back,
        fields=fields,
        secrets_again=[k for k in SECRET_FIELDS if ctx.form.get(k)],
    )


def restorable_until(connection: SsoConnection | None) -> datetime | None:
    """Until when the configuration before the last change can be restored (None: not)."""
    if connection is None or connection.previous_config is None:
        return None
    if connection.previous_saved_at is None:
        return None
    until = connection.previous_saved_at + safety.RESTORE_WINDOW
    return until if until > datetime.now(UTC) else None


#: The zones the form suggests: of those taken (``preferences.time_zone_names``), the
#: Area/Location names and UTC, without the fixed offsets of ``Etc/``.
ZONE_CHOICES = [
    *sorted(
        z for z in preferences.time_zone_names() if "/" in z and not z.startswith("Etc/")
    ),
    "UTC",
]


def routes(web: Web) -> list[BaseRoute]:
    async def render(ctx: PageContext, test: sso.ConnectionTest | None = None) -> Response:
        connection = await sso.get_connection()
        default_unit = (
            await Unit.get_or_none(id=connection.default_unit_id)
            if connection is not None and connection.default_unit_id is not None
            else None
        )
        return ctx.render(
            "console/settings.html",
            connection=connection,
            default_unit=default_unit,
            test=test,
            callback=f"{web.settings.base_url}/oidc/{ctx.organisation.slug}/callback",
            logout_uri=f"{web.settings.base_url}/oidc/{ctx.organisation.slug}/backchannel-logout",
            post_logout_uri=f"{web.settings.base_url}/oidc/{ctx.organisation.slug}/signed-out",
            login_url=f"{web.settings.base_url}/login/{ctx.organisation.slug}",
            owned_domains=await domains.owned_domains(),
            restorable_until=restorable_until(connection),
            zones=ZONE_CHOICES,
        )

    @page(web, permission=Permission.SSO_READ)
    async def settings_page(ctx: PageContext) -> Response:
        return await render(ctx)

    @page(web, permission=Permission.SSO_WRITE)
    async def save_sso(ctx: PageContext) -> Response:
        changes = connection_changes(ctx.form)
        confirmed = confirmed_count(ctx.form)
        if confirmed is None:
            preview = await sso.preview_change(dict(changes))
            if preview.losing:
                return confirm_page(
                    ctx,
                    preview,
                    what="Saving this identity provider connection takes sign-in from them.",
                    action="/console/settings/sso",
                    back="/console/settings",
                )
        await sso.save_connection(changes, box=web.box, actor=ctx.actor, confirm_losing=confirmed)
        return ctx.redirect("/console/settings", "Saved the identity provider connection.")

    @page(web, permission=Permission.SSO_WRITE)
    async def restore_sso(ctx: PageContext) -> Response:
        confirmed = confirmed_count(ctx.form)
        if confirmed is None:
            preview = await sso.preview_restore()
            if preview.losing or preview.refused:
                return confirm_page(
                    ctx,
                    preview,
                    what="Restoring the previous identity provider connection takes sign-in"
                    " from them.",
                    action="/console/settings/sso/restore",
                    back="/console/settings",
                )
        await sso.restore_previous(actor=ctx.actor, confirm_losing=confirmed)
        return ctx.redirect(
            "/console/settings", "Restored the previous identity provider connection."
        )

    @page(web, permission=Permission.SSO_WRITE)
    async def test_sso(ctx: PageContext) -> Response:
        result = await sso.test_connection(web.rp, actor=ctx.actor)
        return await render(ctx, result)

    @page(web, permission=Permission.ORGANISATION_WRITE)
    async def save_sign_in(ctx: PageContext) -> Response:
        wanted = ctx.form.get("local_sign_in") == "on"
        confirmed = confirmed_count(ctx.form)
        if not wanted and confirmed is None and ctx.organisation.local_sign_in:
            preview = await sso.preview_password_sign_in_off()
            if preview.losing:
                return confirm_page(
                    ctx,
                    preview,
                    what="Switching members' password sign-in off takes sign-in from them"
                    " (they have a password and the identity provider does not admit them).",
                    action="/console/settings/sign-in",
                    back="/console/settings",
                )
        org = await sso.set_local_sign_in(wanted, actor=ctx.actor, confirm_losing=confirmed)
        state = "on" if org.local_sign_in else "off"
        return ctx.redirect("/console/settings", f"Password sign-in for members is {state}.")

    @page(web, permission=Permission.ORGANISATION_WRITE)
    async def save_policy_notice(ctx: PageContext) -> Response:
        """The days of notice of scheduled policy changes; refused beside the field when
        not a whole number from 0 to 90."""
        days = notice_days(ctx.form.get("policy_notice_days"))
        org = await organisations.update_organisation({"policy_notice_days": days}, actor=ctx.actor)
        return ctx.redirect(
            "/console/settings",
            "Members are told of scheduled policy changes "
            f"{counted(org.policy_notice_days, 'day')} before they take effect.",
        )

    @page(web, permission=Permission.ORGANISATION_WRITE)
    async def save_time_zone(ctx: PageContext) -> Response:
        """The zone of the organisation's days; refused beside the field when no zone.
        Says how many policy changes already scheduled keep their moments (they may now
        read as another day)."""
        before = ctx.organisation.time_zone
        org = await organisations.update_organisation(
            {"time_zone": ctx.form.get("time_zone", "")}, actor=ctx.actor
        )
        said = (
            f"The organisation's days are {org.time_zone}'s: last days, the days policies take"
            " effect and review due days begin and end at midnight there."
        )
        scheduled = await PolicyRule.filter(effective_from__gt=datetime.now(UTC)).count()
        if scheduled and org.time_zone != before:
            said += (
                f" Policy changes already scheduled ({scheduled}) keep their moments, named in"
                f" {before}'s days: check their dates on the Policies page."
            )
        return ctx.redirect("/console/settings", said)

    return [
        Route("/console/settings", settings_page, methods=["GET"]),
        Route("/console/settings/time-zone", save_time_zone, methods=["POST"]),
        Route("/console/settings/policy-notice", save_policy_notice, methods=["POST"]),
        Route("/console/settings/sso", save_sso, methods=["POST"]),
        Route("/console/settings/sso/test", test_sso, methods=["POST"]),
        Route("/console/settings/sso/restore", restore_sso, methods=["POST"]),
        Route("/console/settings/sign-in", save_sign_in, methods=["POST"]),
    ]
