"""Effective settings for products (the decision API), the catalogue, products' own
setting declarations, members' choices, and the notice products show members.

Answers are rendered once and cached per process with a strong ETag; while a product's
credential was verified in the last seconds, a repeated request is answered from memory
without touching the database. Every change that could alter an answer invalidates it on
every process (PostgreSQL NOTIFY), and compiled policies are keyed on versions read in
the request's transaction, so a lost notification cannot serve a stale policy.
"""

from __future__ import annotations

import hashlib
import html
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import EmailStr, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.api import ApiRouter, Call
from app.auth import Principal
from app.conditional import none_match
from app.v1.common import FREE_TEXT, NAME, Input, JsonInt, Output, SettingKey, SettingValue
from policies.cache import Answer, DecisionCache
from policies.catalogue import SAMPLE_DESCRIPTION_MAX
from policies.resolve import Resolved, SourceKind
from policies.schedule import UpcomingChange
from tenants import db
from tenants.clients.models import ProductClient
from tenants.errors import FieldProblem, InvalidInputError, NotFoundError, PermissionDeniedError
from tenants.ids import OrgId
from tenants.members.models import Member
from tenants.notice import organisation_notice
from tenants.organisations.service import get_current_organisation
from tenants.permissions import Permission
from tenants.policy import schedule
from tenants.policy import service as policy

router = ApiRouter("/v1", "settings")


class SourceOut(Output):
    kind: SourceKind
    rule_id: str | None = None
    target_kind: str | None = None
    target_id: str | None = None


class UpcomingOut(Output):
    value: Any = Field(description="The value from ``effective_at`` on.")
    locked: bool = Field(description="Whether the organisation locks it from then on.")
    effective_at: datetime = Field(description="When the scheduled change takes effect.")
    reason: str = Field(description="The organisation's reason for it (shown to members).")


class EffectiveSetting(Output):
    value: Any
    locked: bool
    source: SourceOut
    reason: str = Field(description="Why the organisation set it (shown to members).")
    hidden_choice: Any = Field(None, description="The member's own choice that a lock hides.")
    upcoming: list[UpcomingOut] = Field(
        default_factory=list,
        description="Scheduled changes of this member's value or lock, earliest first: "
        "each takes effect at its time with nothing else to call (the answer's cache "
        "expires then).",
    )


class EffectiveSettings(Output):
    member_id: uuid.UUID
    catalogue_version: str
    policy_version: int
    settings: dict[str, EffectiveSetting]


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _upcoming(changes: list[UpcomingChange]) -> list[dict[str, Any]]:
    return [
        {
            "value": _jsonable(c.value),
            "locked": c.locked,
            "effective_at": c.effective_at.isoformat(),
            "reason": c.reason,
        }
        for c in changes
    ]


def render_settings(
    member_id: uuid.UUID,
    snapshot: policy.PolicySnapshot,
    resolved: dict[str, Resolved],
    upcoming: dict[str, list[UpcomingChange]] | None = None,
) -> bytes:
    """The answer's bytes; hand-built (no model round trip) because it is the hot path."""
    coming = upcoming or {}
    settings = {
        key: {
            "value": _jsonable(r.value),
            "locked": r.locked,
            "source": {
                "kind": r.source.kind.value,
                "rule_id": r.source.rule_id,
                "target_kind": r.source.target_kind.value if r.source.target_kind else None,
                "target_id": r.source.target_id,
            },
            "reason": r.reason,
            "hidden_choice": _jsonable(r.hidden_choice),
            "upcoming": _upcoming(coming.get(key, [])),
        }
        for key, r in resolved.items()
    }
    return json.dumps(
        {
            "member_id": str(member_id),
            "catalogue_version": snapshot.compiled.catalogue.version,
            "policy_version": snapshot.policy_version,
            "settings": settings,
        },
        separators=(",", ":"),
    ).encode()


def _decisions(request: Request) -> DecisionCache[OrgId]:
    cache: DecisionCache[OrgId] = request.app.state.decisions
    return cache


def _respond(request: Request, answer: Answer) -> Response:
    headers = {"ETag": answer.etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if none_match(request.headers.get("if-none-match"), answer.etag):
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


async def answers_for(request: Request, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, Answer]:
    """Cached answers, computing the missing ones in one pass; unknown members are absent."""
    cache = _decisions(request)
    org = db.current_org()
    found: dict[uuid.UUID, Answer] = {}
    missing = []
    for member_id in member_ids:
        cached = cache.answer(org, member_id)
        if cached is not None:
            found[member_id] = cached
        else:
            missing.append(member_id)
    if missing:
        generation = cache.generation(org)
        snapshot = await policy.compiled_policy(cache)
        facts = await policy.member_facts(missing)
        for member_id, f in facts.items():
            unit = str(f.unit_id)
            resolved = snapshot.compiled.resolve(unit, f.group_ids, f.choices)
            body = render_settings(
                member_id,
                snapshot,
                resolved,
                snapshot.schedule.upcoming(resolved, unit, f.group_ids, f.choices),
            )
            answer = Answer(
                '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                body,
                cache.answer_expiry(snapshot.valid_for),
            )
            cache.store_answer(org, member_id, answer, generation=generation)
            found[member_id] = answer
    return found


async def _fast_member_settings(
    request: Request, principal: Principal, path: dict[str, uuid.UUID]
) -> Response | None:
    answer = _decisions(request).answer(principal.org_id, path["id"])
    return _respond(request, answer) if answer is not None else None


@router.get(
    "/members/{id}/settings",
    summary="A member's effective settings, with provenance",
    permission=Permission.SETTINGS_READ,
    response=EffectiveSettings,
    errors=(304, 404),
    fast=_fast_member_settings,
)
async def get_member_settings(call: Call[Input, Input]) -> Response:
    """Strong ETag; send it back as If-None-Match to get 304 while nothing changed."""
    answers = await answers_for(call.request, [call.id()])
    if call.id() not in answers:
        raise NotFoundError(f"there is no member with id {call.id()}")
    return _respond(call.request, answers[call.id()])


class LookupQuery(Input):
    email: EmailStr | None = None
    idp_subject: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


@router.get(
    "/effective-settings",
    summary="Effective settings of the member with this email or IdP subject",
    permission=Permission.SETTINGS_READ,
    query=LookupQuery,
    response=EffectiveSettings,
    errors=(304, 404, 422),
)
async def lookup_member_settings(call: Call[Input, LookupQuery]) -> Response:
    q = call.query
    if (q.email is None) == (q.idp_subject is None):
        raise InvalidInputError(
            "give exactly one of email and idp_subject",
            fields=[FieldProblem("query.email", "give email or idp_subject, not both")],
        )
    member = await (
        Member.filter(email=q.email.lower())
        if q.email
        else Member.filter(idp_subject=q.idp_subject)
    ).first()
    if member is None:
        raise NotFoundError("there is no such member")
    return _respond(call.request, (await answers_for(call.request, [member.id]))[member.id])


class BatchIn(Input):
    member_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)


class BatchOut(Output):
    items: list[EffectiveSettings]
    not_found: list[uuid.UUID]


@router.post(
    "/effective-settings/batch",
    summary="Effective settings of many members at once",
    permission=Permission.SETTINGS_READ,
    body=BatchIn,
    response=BatchOut,
    errors=(422,),
)
async def batch_member_settings(call: Call[BatchIn, Input]) -> Response:
    wanted = list(dict.fromkeys(call.body.member_ids))
    answers = await answers_for(call.request, wanted)
    items = b",".join(answers[m].body for m in wanted if m in answers)
    missing = json.dumps([str(m) for m in wanted if m not in answers]).encode()
    return Response(
        b'{"items":[' + items + b'],"not_found":' + missing + b"}", media_type="application/json"
    )


class CatalogueOut(Output):
    version: str
    settings: list[dict[str, Any]]


@router.get(
    "/settings/catalogue",
    summary="The settings this organisation can govern",
    permission=Permission.SETTINGS_READ,
    response=CatalogueOut,
)
async def get_catalogue(call: Call[Input, Input]) -> CatalogueOut:
    cat = await policy.catalogue()
    return CatalogueOut(version=cat.version, settings=[s.describe() for s in cat])


class SampleIn(Input):
    document: dict[str, Any] = Field(
        description="An example of what the product sends at this value (a JSON object, at "
        "most 8 KiB)."
    )
    description: Annotated[
        str, StringConstraints(min_length=1, max_length=SAMPLE_DESCRIPTION_MAX), FREE_TEXT
    ] = Field(description="What the example shows, in plain language for members.")


class Declaration(Input):
    key: SettingKey
    type: Annotated[str, StringConstraints(pattern="^(bool|enum|int|string_list)$")]
    default: SettingValue
    title: Annotated[str, StringConstraints(min_length=1, max_length=200), NAME]
    description: Annotated[str, StringConstraints(max_length=2000), FREE_TEXT] = ""
    purpose: Annotated[str, StringConstraints(max_length=50), NAME] = "provide_the_product"
    data_categories: list[Annotated[str, StringConstraints(max_length=50), NAME]] = Field(
        default_factory=list, max_length=20
    )
    off_effect: Annotated[str, StringConstraints(max_length=1000), FREE_TEXT] = ""
    allowed: list[Annotated[str, StringConstraints(max_length=100), NAME]] = Field(
        default_factory=list, max_length=50
    )
    minimum: JsonInt | None = None
    maximum: JsonInt | None = None
    member_choosable: bool = True
    required: bool = False
    consent: bool = Field(
        False,
        description="It rests on each member's own consent (advertising, optional sharing, "
        "cookies not needed): an on/off setting, off by default, which an organisation may "
        "lock off but never on.",
    )
    samples: dict[Annotated[str, StringConstraints(max_length=100)], SampleIn] = Field(
        default_factory=dict,
        max_length=50,
        description='Per value of an enum or bool setting (bool: "true"/"false"), what the '
        "product sends at it; shown beside the setting in the console and on the account page.",
    )


class DeclarationIn(Input):
    product_id: uuid.UUID
    settings: list[Declaration] = Field(min_length=1, max_length=100)


@router.put(
    "/settings/declared",
    summary="Declare (or update) a product's own settings",
    permission=Permission.SETTINGS_WRITE,
    body=DeclarationIn,
    response=CatalogueOut,
    errors=(403, 404, 409, 422),
)
async def declare_settings(call: Call[DeclarationIn, Input]) -> CatalogueOut:
    """A product's client may declare settings for its own product only."""
    client = await ProductClient.filter(client_id=call.actor.id).first()
    if client is not None and client.product_id != call.body.product_id:
        raise PermissionDeniedError("a product may declare settings for itself only")
    definitions = [d.model_dump() for d in call.body.settings]
    cat = await policy.declare_settings(call.body.product_id, definitions, actor=call.actor)
    return CatalogueOut(version=cat.version, settings=[s.describe() for s in cat])


class ChoiceIn(Input):
    setting: SettingKey
    value: SettingValue | None = Field(description="The member's value; null removes their choice.")


@router.post(
    "/members/{id}/choices",
    summary="Set (or clear) a member's own choice for a setting",
    permission=Permission.SETTINGS_WRITE,
    body=ChoiceIn,
    response=EffectiveSetting,
    errors=(404, 409, 422),
)
async def set_member_choice(call: Call[ChoiceIn, Input]) -> EffectiveSetting:
    """Refused with 409 ``setting_locked`` when the organisation enforces the setting."""
    if call.body.value is None:
        await policy.clear_choice(call.id(), call.body.setting, actor=call.actor)
        resolved = (await policy.effective_settings([call.id()])).get(call.id())
        if resolved is None:
            raise NotFoundError(f"there is no member with id {call.id()}")
        result = resolved[call.body.setting]
    else:
        result = await policy.set_choice(
            call.id(), call.body.setting, call.body.value, actor=call.actor
        )
    coming = (await schedule.upcoming_for([call.id()])).get(call.id(), {})
    return _effective(result, coming.get(call.body.setting, []))


def _effective(r: Resolved, upcoming: list[UpcomingChange]) -> EffectiveSetting:
    return EffectiveSetting(
        upcoming=[UpcomingOut.model_validate(u) for u in _upcoming(upcoming)],
        value=_jsonable(r.value),
        locked=r.locked,
        reason=r.reason,
        hidden_choice=_jsonable(r.hidden_choice),
        source=SourceOut(
            kind=r.source.kind,
            rule_id=r.source.rule_id,
            target_kind=r.source.target_kind.value if r.source.target_kind else None,
            target_id=r.source.target_id,
        ),
    )


class NoticePointOut(Output):
    key: str
    heading: str
    text: str


class LockedSettingOut(Output):
    setting: str
    title: str
    value: Any
    reason: str


class NoticeOut(Output):
    organisation: str
    kind: str
    notice: list[NoticePointOut]
    locked: list[LockedSettingOut]


async def _notice(member_id: uuid.UUID) -> NoticeOut:
    org = await get_current_organisation()
    resolved = (await policy.effective_settings([member_id])).get(member_id)
    if resolved is None:
        raise NotFoundError(f"there is no member with id {member_id}")
    cat = await policy.catalogue()
    locked = [
        LockedSettingOut(setting=k, title=cat[k].title, value=_jsonable(r.value), reason=r.reason)
        for k, r in resolved.items()
        if r.locked
    ]
    return NoticeOut(
        organisation=org.name,
        kind=org.kind.value,
        notice=[
            NoticePointOut(key=p.key, heading=p.heading, text=p.text)
            for p in organisation_notice(org)
        ],
        locked=locked,
    )


@router.get(
    "/members/{id}/notice",
    summary="What the organisation controls, for products to show the member",
    permission=Permission.SETTINGS_READ,
    response=NoticeOut,
    errors=(404,),
)
async def get_member_notice(call: Call[Input, Input]) -> NoticeOut:
    return await _notice(call.id())


@router.get(
    "/members/{id}/notice.html",
    summary="The same notice as a small accessible HTML fragment",
    permission=Permission.SETTINGS_READ,
    errors=(404,),
    alternatives=("text/html",),
)
async def get_member_notice_html(call: Call[Input, Input]) -> Response:
    n = await _notice(call.id())
    e = html.escape
    points = "".join(f"<li><strong>{e(p.heading)}.</strong> {e(p.text)}</li>" for p in n.notice)
    locked = "".join(
        f"<li><strong>{e(s.title)}</strong>: {e(json.dumps(s.value))}"
        + (f" — {e(s.reason)}" if s.reason else "")
        + "</li>"
        for s in n.locked
    )
    fragment = (
        f'<section class="tenantry-notice" aria-labelledby="tenantry-notice-title" lang="en">'
        f'<h2 id="tenantry-notice-title">This account is managed by {e(n.organisation)}</h2>'
        f"<ol>{points}</ol>"
        + (f"<h3>Set by {e(n.organisation)}</h3><ul>{locked}</ul>" if locked else "")
        + "</section>"
    )
    return HTMLResponse(fragment)
