"""The audit log for investigations: filters by actor, action prefix, target, date range
and outcome, kept in the URL; each event as readable changes (field: before → after) with
names instead of ids, linked, the raw JSON behind a disclosure; the filtered events as
CSV or NDJSON. Events not sealed into the chain yet are shown as pending."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import rfc3339
from app.v1.audit import export_response
from app.web.console.tables import PAGE_SIZES, TRAIL
from app.web.numbers import INT64, whole_number
from app.web.pages import PageContext, Web, page
from tenants import db
from tenants.audit import reading, verification
from tenants.audit import service as audit
from tenants.errors import FieldProblem, InvalidInputError
from tenants.groups.models import Group
from tenants.members import service as members
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.products.models import Product
from tenants.units.models import Unit

PAGE = 50
OUTCOMES = ("done", "refused")


@dataclass(frozen=True, slots=True)
class AuditForm:
    """The filter form as typed (to show it again) and the filter it means."""

    values: dict[str, str]
    filters: audit.AuditFilter
    problems: dict[str, str]


def _day(text: str) -> date | None:
    try:
        return rfc3339.parse_date(text) if text else None
    except ValueError:
        return None


async def read_form(params: QueryParams) -> AuditForm:
    """The filters from the query string. ``actor`` may be an email or the start of a name
    (one member's events) or an actor reference (``api_token:…``); dates are whole UTC
    days, ``until`` included."""
    values = {
        k: (params.get(k) or "").strip()[:300]
        for k in ("actor", "action", "target_type", "target_id", "since", "until", "outcome")
    }
    problems: dict[str, str] = {}
    actor = values["actor"] or None
    if actor and "@" in actor and ":" not in actor:
        found = await members.find_member(email=actor)
        if found is None:
            problems["actor"] = "no member has this email"
        actor = f"member:{found.id}" if found else "member:none"
    elif actor and ":" not in actor:
        # A name (or the start of one), as people think of who did something.
        named = await members.find_members(actor, limit=2)
        if len(named) == 1:
            actor = f"member:{named[0].id}"
        else:
            problems["actor"] = (
                "no member's name or email starts with this"
                if not named
                else "names more than one member: type more of the name, or their email"
            )
            actor = "member:none"
    since, until = _day(values["since"]), _day(values["until"])
    for field, value, parsed in (
        ("since", values["since"], since),
        ("until", values["until"], until),
    ):
        if value and parsed is None:
            problems[field] = "is not a date (YYYY-MM-DD)"
    if since and until and until < since:
        # An empty list with no word was all an admin saw.
        problems["until"] = f"is before From ({since.isoformat()}): nothing can match"
    return AuditForm(
        values,
        audit.AuditFilter(
            action=values["action"] or None,
            actor=actor,
            target_type=values["target_type"] or None,
            target_id=values["target_id"] or None,
            since=datetime.combine(since, time(), UTC) if since else None,
            # Through the last day there is (9999-12-31) is no bound: no day follows it.
            until=(
                datetime.combine(until + timedelta(days=1), time(), UTC)
                if until and until < date.max
                else None
            ),
            outcome=values["outcome"] if values["outcome"] in OUTCOMES else None,
        ),
        problems,
    )


#: The filters' names as the form shows them.
FILTER_LABELS = {"actor": "Who", "since": "From", "until": "To"}


#: Where a named thing of each kind is shown on the console.
NAMED_PAGES = {
    "member": "/console/members/{}",
    "unit": "/console/members?unit={}",
    "group": "/console/groups/{}",
    "product": "/console/products/{}/webhooks",
}


@dataclass(frozen=True, slots=True)
class Names:
    #: kind (``reading.FIELDS_OF``) → id → name.
    by_kind: dict[str, dict[uuid.UUID, str]]

    def link(self, kind: str, value: Any) -> tuple[str, str | None]:
        """(text, href or None) for an id of ``kind`` (member, unit, group, product)."""
        try:
            key = uuid.UUID(str(value))
        except ValueError:
            return str(value), None
        name = self.by_kind.get(kind, {}).get(key)
        if name is None:
            return str(value), None
        return name, NAMED_PAGES[kind].format(key)


async def names_for(events: list[dict[str, Any]]) -> Names:
    """The names of what a page of events mentions: one query per kind, by id."""
    ids = reading.mentioned_ids(events)
    models: dict[str, Any] = {"member": Member, "unit": Unit, "group": Group, "product": Product}
    return Names(
        {
            kind: dict(await model.filter(id__in=list(ids[kind])).values_list("id", "name"))
            if ids[kind]
            else {}
            for kind, model in models.items()
        }
    )


#: A time as the service writes one into an event's snapshot (ISO 8601 with its offset).
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")


def shown_in_zone(value: Any, ctx: PageContext) -> str:
    """A snapshot's value as one short line (``reading.shown``), a time in the viewer's
    zone as every other time on the console (``revoked_at`` read as raw ISO text)."""
    if isinstance(value, str) and _STORED_TIME.fullmatch(value):
        try:
            return ctx.time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    return reading.shown(value)


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.AUDIT_READ)
    async def audit_log(ctx: PageContext) -> Response:
        params = ctx.request.query_params
        form = await read_form(params)
        before = params.get("before")
        before_id = whole_number(before, high=INT64[1])
        size = whole_number(params.get("size"))
        size = size if size in PAGE_SIZES else PAGE
        # The pages before this one (their ``before``), for "Newer events" (as ListView).
        trail = [
            t
            for t in (params.get("trail") or "").split(".")
            if t == "first" or whole_number(t, high=INT64[1]) is not None
        ]
        trail = trail[-TRAIL:]
        rows = (
            await audit.list_events(form.filters, before_id=before_id, limit=size + 1)
            if not form.problems
            else []
        )
        more = len(rows) > size
        rows = rows[:size]
        kept = {k: v for k, v in form.values.items() if v}
        newer_url = None
        if before_id:
            back = trail[-1] if trail else "first"
            newer = {**kept, "size": str(size)}
            if back != "first":
                newer.update(before=back, trail=".".join(trail[:-1]))
            newer_url = "?" + urlencode(newer)
        return ctx.render(
            "console/audit.html",
            events=rows,
            changes={r["id"]: reading.changes_of(r["before"], r["after"]) for r in rows},
            names=await names_for(rows),
            shown=lambda value: shown_in_zone(value, ctx),
            fields_of=reading.FIELDS_OF,
            kind_of=reading.kind_of,
            values=form.values,
            problems=form.problems,
            outcomes=OUTCOMES,
            known_actions=await audit.known_actions(),
            filtered=bool(kept),
            older_url="?"
            + urlencode(
                {
                    **kept,
                    "size": str(size),
                    "before": rows[-1]["id"],
                    "trail": ".".join([*trail, before or "first"][-TRAIL:]),
                }
            )
            if more and rows
            else None,
            newer_url=newer_url,
            newest_url="?" + urlencode({**kept, "size": str(size)}) if before_id else None,
            size=size,
            sizes=PAGE_SIZES,
            export_csv="/console/audit/export?" + urlencode({**kept, "format": "csv"}),
            export_ndjson="/console/audit/export?" + urlencode({**kept, "format": "ndjson"}),
            **await _verification_context(),
        )

    @page(web, permission=Permission.AUDIT_READ)
    async def verify(ctx: PageContext) -> Response:
        """Start a verification of the chain (a job: ``tenants.audit.verification``); the
        audit page shows its progress and then its outcome. Reading roles may: it checks
        and records, and changes nothing else."""
        already = await verification.progress()
        await verification.start(actor=ctx.actor)
        return ctx.redirect(
            "/console/audit#verification",
            "A verification is already running; its progress is below."
            if already
            else "Verification started; its progress is below.",
        )

    @page(web, permission=Permission.AUDIT_READ)
    async def verification_state(ctx: PageContext) -> Response:
        """The verification card alone, polled every 2 s while one runs."""
        return ctx.render(
            "console/audit_verification.html", polled=True, **await _verification_context()
        )

    @page(web, permission=Permission.AUDIT_READ)
    async def audit_export(ctx: PageContext) -> Response:
        """The events the filters match, as a download; refused (400, naming each filter
        and why) when a filter is wrong: a filter left out would export more than asked
        (an impossible From exported every event of the action)."""
        form = await read_form(ctx.request.query_params)
        if form.problems:
            reasons = "; ".join(
                f"{FILTER_LABELS.get(k, k)}: {v}" for k, v in form.problems.items()
            )
            raise InvalidInputError(
                f"Nothing was exported: a filter is wrong ({reasons}). Correct it on the "
                "audit log page and export from there.",
                fields=[FieldProblem(k, v) for k, v in form.problems.items()],
            )
        fmt = "ndjson" if ctx.request.query_params.get("format") == "ndjson" else "csv"
        return export_response(db.current_org(), form.filters, fmt)

    return [
        Route("/console/audit", audit_log, methods=["GET"]),
        Route("/console/audit/export", audit_export, methods=["GET"]),
        Route("/console/audit/verify", verify, methods=["POST"]),
        Route("/console/audit/verification", verification_state, methods=["GET"]),
    ]


async def _verification_context() -> dict[str, Any]:
    return {
        "verifying": await verification.progress(),
        "verified": await verification.last_outcome(),
        "head": await audit.stored_head(),
    }
