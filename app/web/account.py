"""The member's account page: what the organisation controls and can see, their products,
and their privacy settings — each either set by the organisation (with its reason), the
organisation's default that they may change, or their own choice."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web import account_access, account_departure, account_privacy, account_reviews
from app.web.console.policies import (
    anchor,
    by_purpose,
    compare_samples,
    parse_value,
    provenance,
    rule_target_names,
    sample_choices,
    sample_value,
    show_value,
)
from app.web.pages import PageContext, Web, page
from policies.catalogue import Catalogue, Setting
from policies.resolve import Resolved, SourceKind
from tenants.access import policy as access_policy
from tenants.content.holds import member_hold_explanation
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members import preferences
from tenants.notice import organisation_notice
from tenants.policy import moves
from tenants.policy import service as policy
from tenants.products.models import Product, ProductAccount
from tenants.reviews import service as reviews
from tenants.signins import service as sign_ins


@dataclass(frozen=True, slots=True)
class PrivacySetting:
    """One setting as the member sees it."""

    setting: Setting
    resolved: Resolved
    #: ``locked`` (a rule enforces it), ``fixed`` (members may never choose it),
    #: ``choice`` (their own) or ``default`` (the organisation's, theirs to change).
    status: str
    #: The unit or group whose rule sets the value; empty for defaults and choices.
    where: str
    #: What the member gets without their own choice: "use the organisation's default".
    org_default: Resolved

    @property
    def editable(self) -> bool:
        return self.status in {"choice", "default"}


def privacy_settings(
    cat: Catalogue,
    mine: dict[str, Resolved],
    without_choices: dict[str, Resolved],
    names: dict[str, str],
) -> list[PrivacySetting]:
    rows = []
    for setting in cat:
        resolved = mine[setting.key]
        if resolved.locked:
            status = "locked"
        elif not setting.member_choosable:
            status = "fixed"
        elif resolved.source.kind is SourceKind.MEMBER:
            status = "choice"
        else:
            status = "default"
        where = provenance(resolved, names).where
        rows.append(PrivacySetting(setting, resolved, status, where, without_choices[setting.key]))
    return rows


def _back(key: str) -> str:
    """The account page scrolled to the setting, naming it so the outcome shows beside it."""
    return f"/account?setting={quote(key)}#{anchor(key)}"


def _setting(cat: Catalogue, key: str) -> Setting:
    """The setting a form names; InvalidInputError when there is none. The key is not
    repeated: a page should not show words a crafted link put there."""
    if key not in cat:
        raise InvalidInputError(
            "there is no such setting", fields=[FieldProblem("setting", "no such setting")]
        )
    return cat[key]


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=None)
    async def account_home(ctx: PageContext) -> Response:
        member = ctx.active.member
        accounts = await ProductAccount.filter(member_id=member.id).order_by("created_at")
        products = {p.id: p for p in await Product.filter(id__in=[a.product_id for a in accounts])}
        # The same compiled policy (and cache) that answers products, so the page and the
        # products never disagree about a member's settings.
        snapshot = await policy.compiled_policy(ctx.request.app.state.decisions)
        compiled = snapshot.compiled
        facts = (await policy.member_facts([member.id]))[member.id]
        mine = compiled.resolve(str(facts.unit_id), facts.group_ids, facts.choices)
        coming = snapshot.schedule.upcoming(
            mine, str(facts.unit_id), facts.group_ids, facts.choices
        )
        defaults = compiled.resolve(str(facts.unit_id), facts.group_ids, {})
        focus = ctx.request.query_params.get("setting")
        rows = privacy_settings(compiled.catalogue, mine, defaults, await rule_target_names())
        # A sample chosen to compare with (``?sample=<setting>&level=<value>``); otherwise
        # each setting with samples shows what is sent at its current value.
        picked = ctx.request.query_params.get("sample")
        compared = {}
        for key, resolved in mine.items():
            setting = compiled.catalogue[key]
            if not setting.samples:
                continue
            selected = (
                sample_value(setting, ctx.request.query_params.get("level"))
                if key == picked
                else None
            )
            compared[key] = compare_samples(
                setting, resolved.value, resolved.value if selected is None else selected
            )
        return ctx.render(
            "account/home.html",
            notice=organisation_notice(ctx.organisation),
            coming_by_setting=coming,
            coming_changes=sorted(
                (c for changes in coming.values() for c in changes),
                key=lambda c: (c.effective_at, c.setting),
            ),
            accounts=accounts,
            products=products,
            purposes=by_purpose(rows, lambda r: r.setting),
            # A setting named after a change shows the outcome beside it (where the page
            # scrolls to); any other message stays in the banner at the top.
            focus=focus if focus in compiled.catalogue else None,
            show_value=show_value,
            anchor=anchor,
            cat=compiled.catalogue,
            compared=compared,
            sample_focus=picked if picked in compared else None,
            sample_choices=sample_choices,
            leaving=await account_departure.what_leaving_means(member),
            holds=await member_hold_explanation(member.id),
            past_moves=await moves.past_moves(member.id),
            **account_departure.template_helpers(),
            access=await account_access.who_accessed(ctx),
            access_policy=await access_policy.get_policy(),
            **account_access.template_helpers(),
            privacy_requests=await account_privacy.your_requests(member),
            sign_ins=await sign_ins.recent_for_member(member.id),
            reviews_waiting=await reviews.waiting_count(member.id),
            **account_privacy.summary_helpers(),
        )

    @page(web, permission=None)
    async def choose(ctx: PageContext) -> Response:
        """The member's own value; refused with the organisation's reason when locked."""
        key = ctx.form.get("setting", "")
        cat = await policy.catalogue()
        try:
            setting = _setting(cat, key)
            value = parse_value(setting, ctx.form.get("value"))
            result = await policy.set_choice(ctx.active.member.id, key, value, actor=ctx.actor)
        except (InvalidInputError, policy.SettingLockedError) as error:
            # Both are raised before anything is written.
            back = _back(key) if key in cat else "/account"
            return ctx.redirect(back, f"Not changed: {error.message.rstrip('.')}.")
        return ctx.redirect(
            _back(key),
            f"Saved: {setting.title} is now {show_value(setting, result.value)}, in every product.",
        )

    @page(web, permission=None)
    async def use_default(ctx: PageContext) -> Response:
        key = ctx.form.get("setting", "")
        try:
            setting = _setting(await policy.catalogue(), key)
        except InvalidInputError as error:
            return ctx.redirect("/account", f"Not changed: {error.message.rstrip('.')}.")
        member_id = ctx.active.member.id
        await policy.clear_choice(member_id, key, actor=ctx.actor)
        now = (await policy.effective_settings([member_id]))[member_id][key]
        return ctx.redirect(
            _back(key),
            f"{setting.title} now follows {ctx.organisation.name}'s default: "
            f"{show_value(setting, now.value)}.",
        )

    @page(web, permission=None)
    async def time_zone(ctx: PageContext) -> Response:
        """The browser reports its time zone (``/static/tz.js``) when it differs from the one
        stored: 204; an unknown zone is a 422 problem naming ``time_zone`` (asked for as
        JSON, see ``wants_json``)."""
        await preferences.set_time_zone(
            ctx.active.member.id, ctx.form.get("time_zone"), actor=ctx.actor
        )
        return Response(status_code=204)

    return [
        Route("/account", account_home, methods=["GET"]),
        Route("/account/time-zone", time_zone, methods=["POST"]),
        Route("/account/settings", choose, methods=["POST"]),
        Route("/account/settings/default", use_default, methods=["POST"]),
        *account_departure.routes(web),
        *account_privacy.routes(web),
        *account_reviews.routes(web),
    ]
