"""Fulfilling requests, in the caller's tenant transaction: the export of an access or
portability request, and the erasure of an erasure request.

An export collects for a while: each product the member has an account in (and that
takes webhooks) is asked by the ``privacy_request.export_requested`` event and uploads
its part through the API; when all have answered, or the collection time is over, the
``privacy_request.export`` job builds the ZIP and stores it in the database, where any
node can serve it. The member downloads it through a signed link while signed in; the
bundle is deleted when the link expires.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.content.holds import member_hold_explanation
from tenants.content.models import ContentKind
from tenants.content.service import acting_product
from tenants.departures import service as departures
from tenants.errors import (
    ConflictError,
    FieldProblem,
    IllegalTransitionError,
    InvalidInputError,
    PermissionDeniedError,
)
from tenants.jobs import service as jobs
from tenants.mail import service as mail
from tenants.members.lifecycle import MemberStatus
from tenants.members.service import get_member
from tenants.models_base import get_referenced
from tenants.policy import service as policy
from tenants.privacy import datamap, erasure, retention, shredding
from tenants.products.models import Product
from tenants.requests import bundle, rules
from tenants.requests.models import (
    ExportStatus,
    PrivacyExport,
    PrivacyExportPart,
    PrivacyRequest,
)
from tenants.requests.service import (
    account_path,
    add_event,
    begin_work,
    get_policy,
    get_request,
)
from tenants.text import counted
from tenants.webhooks import service as webhooks

BUILD_JOB = "privacy_request.export"
EXPIRE_JOB = "privacy_request.export_expire"
EXPORT_TOPIC = "privacy_request.export_requested"
#: The largest part a product may upload (bytes of JSON).
MAX_PART_BYTES = 32 * 1024 * 1024


def parts_path(request_id: uuid.UUID) -> str:
    return f"/v1/privacy-requests/{request_id}/export/parts"


def _open(request: PrivacyRequest) -> None:
    if not rules.is_open(request.status):
        raise IllegalTransitionError(
            f"the request is {request.status.value}; closed requests are not fulfilled",
            extra={"status": request.status.value},
        )


async def export_of(request_id: uuid.UUID) -> PrivacyExport | None:
    return await PrivacyExport.filter(request_id=request_id).first()


async def _not_erased(request: PrivacyRequest, why: str) -> None:
    """ConflictError naming ``status`` when the request's member was erased (purged): no
    data of theirs is left to export or erase, and they could not sign in to download."""
    member = await get_member(request.member_id)
    if member.status is MemberStatus.PURGED:
        raise ConflictError(
            f"the member was erased: {why}", fields=[FieldProblem("status", "is purged")]
        )


async def start_export(request_id: uuid.UUID, *, actor: Actor) -> PrivacyExport:
    """Ask the member's products for their parts and queue the build (at once when no
    product is asked). Idempotent while an export is collecting or ready; an expired one
    starts over. Usually for access and portability requests, but any open request may be
    answered with a copy of the data. 409 for a closed request."""
    request = await get_request(request_id, for_update=True)
    _open(request)
    await _not_erased(request, "nothing of theirs is left to export, and they cannot sign in")
    if await begin_work(request, actor=actor):  # the member sees work has started
        await request.save(update_fields=["status", "updated_at"])
    existing = await PrivacyExport.filter(request_id=request.id).select_for_update().first()
    if existing is not None and existing.status != ExportStatus.EXPIRED:
        return existing
    expected = [
        r["id"]
        for r in await db.fetch(
            "SELECT DISTINCT p.id FROM products p JOIN product_accounts a "
            "ON a.tenant_id = p.tenant_id AND a.product_id = p.id "
            "WHERE p.tenant_id = $1 AND a.member_id = $2 AND p.webhook_url IS NOT NULL",
            db.current_org(),
            request.member_id,
        )
    ]
    now = datetime.now(UTC)
    collect_until = now + timedelta(hours=(await get_policy()).export_collect_hours)
    if not expected:
        collect_until = now
    if existing is None:
        export = await PrivacyExport.create(
            tenant_id=db.current_org(),
            request_id=request.id,
            status=ExportStatus.COLLECTING,
            expected_product_ids=[str(p) for p in expected],
            collect_until=collect_until,
        )
    else:
        export = existing
        await PrivacyExportPart.filter(export_id=export.id).delete()
        export.status = ExportStatus.COLLECTING
        export.expected_product_ids = [str(p) for p in expected]
        export.collect_until = collect_until
        export.ready_at = export.expires_at = export.sha256 = None
        export.files = []
        export.size = 0
        await export.save()
    round_ = export.updated_at.isoformat()
    member = await get_member(request.member_id)
    if expected:
        await webhooks.publish(
            EXPORT_TOPIC,
            {
                "request_id": str(request.id),
                "kind": request.kind.value,
                "member_id": str(member.id),
                "member_email": member.email,
                "upload_path": parts_path(request.id),
                "collect_until": collect_until.isoformat(),
            },
            key=f"privacy_export:{export.id}:{round_}",
            product_ids=expected,
        )
    await jobs.enqueue(
        BUILD_JOB,
        {"export_id": str(export.id)},
        key=f"privacy_export:{export.id}:{round_}:build",
        run_at=collect_until,
    )
    await add_event(
        request,
        "export_requested",
        actor=actor,
        body=(
            f"Collecting your data from Tenantry and {counted(len(expected), 'product')}"
            if expected
            else "Collecting your data"
        ),
        data={"products": len(expected)},
    )
    await audit.record(
        "privacy_request.export_started",
        "privacy_request",
        request.id,
        actor=actor,
        after={"export_id": export.id, "product_ids": expected, "collect_until": collect_until},
    )
    return export


def _checked_json(data: bytes) -> None:
    problems = []
    if len(data) > MAX_PART_BYTES:
        problems.append(FieldProblem("body", f"at most {MAX_PART_BYTES} bytes"))
    else:
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError):
            problems.append(FieldProblem("body", "is not valid JSON (UTF-8)"))
        else:
            if not isinstance(parsed, dict | list):
                problems.append(FieldProblem("body", "expected a JSON object or array"))
    if problems:
        raise InvalidInputError("the export part was refused", fields=problems)


async def upload_part(
    request_id: uuid.UUID, data: bytes, *, product_id: uuid.UUID | None, actor: Actor
) -> PrivacyExportPart:
    """Store a product's part of the export (a second upload replaces the first) and
    queue the build once every product asked has answered.

    A product's own client uploads for its own product only (403 otherwise); an API
    token names the product. 409 when no export is collecting for the request.
    """
    _checked_json(data)
    request = await get_request(request_id)
    own = await acting_product(actor)
    if own is not None and product_id is not None and product_id != own:
        raise PermissionDeniedError(
            "a product uploads its own part only",
            fields=[FieldProblem("product_id", "not your product")],
        )
    chosen = own or product_id
    if chosen is None:
        raise InvalidInputError(
            "say which product the part is from",
            fields=[FieldProblem("product_id", "required for API tokens")],
        )
    product = await get_referenced(Product, chosen, "product", field="product_id")
    export = await PrivacyExport.filter(request_id=request.id).select_for_update().first()
    if export is None or export.status != ExportStatus.COLLECTING:
        raise ConflictError(
            "no export of this request is collecting parts"
            + (f" (it is {export.status.value})" if export else ""),
            extra={"export_status": export.status.value if export else None},
        )
    existing = await PrivacyExportPart.filter(export_id=export.id, product_id=product.id).first()
    if existing is not None:
        existing.data, existing.size, existing.uploaded_by = data, len(data), actor.display
        await existing.save(update_fields=["data", "size", "uploaded_by", "updated_at"])
        part = existing
    else:
        part = await PrivacyExportPart.create(
            tenant_id=db.current_org(),
            export_id=export.id,
            product_id=product.id,
            data=data,
            size=len(data),
            uploaded_by=actor.display,
        )
    await audit.record(
        "privacy_request.export_part_uploaded",
        "privacy_request",
        request.id,
        actor=actor,
        after={"product_id": product.id, "bytes": len(data), "replaced": existing is not None},
    )
    if existing is None:
        await add_event(
            request,
            "export_part",
            actor=actor,
            body=f"{product.name} sent its data",
            data={"product_id": product.id},
        )
    uploaded = {
        str(p)
        for p in await PrivacyExportPart.filter(export_id=export.id).values_list(
            "product_id", flat=True
        )
    }
    if set(export.expected_product_ids) <= uploaded:
        await jobs.enqueue(
            BUILD_JOB,
            {"export_id": str(export.id)},
            key=f"privacy_export:{export.id}:{export.updated_at.isoformat()}:complete",
        )
    return part


# --- the bundle -------------------------------------------------------------------------

PROFILE_SQL = """
SELECT json_build_object(
  'id', m.id, 'email', m.email, 'name', m.name, 'status', m.status, 'roles', m.roles,
  'identity_provider_subject', m.idp_subject, 'external_id', m.external_id,
  'created_at', m.created_at, 'status_changed_at', m.status_changed_at,
  'unit', json_build_object('id', u.id, 'name', u.name, 'path', u.path),
  'manager', CASE WHEN mg.id IS NULL THEN NULL
                  ELSE json_build_object('name', mg.name, 'email', mg.email) END
)::text AS doc
FROM members m
JOIN units u ON u.tenant_id = m.tenant_id AND u.id = m.unit_id
LEFT JOIN members mg ON mg.tenant_id = m.tenant_id AND mg.id = m.manager_id
WHERE m.tenant_id = $1 AND m.id = $2
"""

#: Each of Tenantry's own JSON arrays about the member, as one text value from PostgreSQL
#: (json_agg): no row-by-row work in Python, which is what keeps a member with 100,000
#: content items quick (bench/export.py).
LIST_SQL: dict[str, str] = {
    "groups.json": """
SELECT coalesce(json_agg(json_build_object('id', g.id, 'name', g.name,
                                           'member_since', gm.created_at) ORDER BY g.name),
                '[]')::text AS doc
FROM group_memberships gm JOIN groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
WHERE gm.tenant_id = $1 AND gm.member_id = $2""",
    "product_accounts.json": """
SELECT coalesce(json_agg(json_build_object('product', p.name, 'product_key', p.key,
                                           'status', a.status, 'since', a.created_at,
                                           'changed_at', a.updated_at) ORDER BY p.key),
                '[]')::text AS doc
FROM product_accounts a JOIN products p ON p.tenant_id = a.tenant_id AND p.id = a.product_id
WHERE a.tenant_id = $1 AND a.member_id = $2""",
    "content_items.json": """
SELECT coalesce(json_agg(json_build_object(
         'id', c.id, 'product_key', p.key, 'external_id', c.external_id, 'title', c.title,
         'kind', c.kind, 'size', c.size, 'created_in_product', c.item_created_at,
         'registered_at', c.created_at, 'status', c.status, 'legal_hold', c.legal_hold,
         'export_url', c.export_url) ORDER BY c.id), '[]')::text AS doc
FROM content_items c JOIN products p ON p.tenant_id = c.tenant_id AND p.id = c.product_id
WHERE c.tenant_id = $1 AND c.member_id = $2""",
    "data_access.json": """
SELECT json_build_object(
  'grants', (SELECT coalesce(json_agg(json_build_object(
                 'id', g.id, 'admin', a.name, 'categories', g.categories,
                 'all_products', g.all_products, 'purpose', g.justification,
                 'status', g.status, 'emergency', g.emergency, 'starts_at', g.starts_at,
                 'ends_at', g.ends_at) ORDER BY g.created_at), '[]')
               FROM access_grants g
               JOIN members a ON a.tenant_id = g.tenant_id AND a.id = g.admin_id
              WHERE g.tenant_id = $1 AND g.member_id = $2 AND g.status <> 'requested'
                AND (g.disclosure_delayed_until IS NULL OR g.disclosure_delayed_until <= now())),
  'accesses', (SELECT coalesce(json_agg(json_build_object(
                 'at', l.checked_at, 'admin', a.name, 'category', l.category,
                 'product', p.name, 'grant_id', l.grant_id) ORDER BY l.id), '[]')
               FROM access_log l
               LEFT JOIN access_grants g ON g.tenant_id = l.tenant_id AND g.id = l.grant_id
               LEFT JOIN members a ON a.tenant_id = l.tenant_id AND a.id = l.admin_id
               LEFT JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id
              WHERE l.tenant_id = $1 AND l.member_id = $2 AND l.allowed
                AND (g.disclosure_delayed_until IS NULL OR g.disclosure_delayed_until <= now()))
)::text AS doc""",
    "privacy_requests.json": """
SELECT coalesce(json_agg(json_build_object(
         'id', r.id, 'kind', r.kind, 'message', r.message, 'status', r.status,
         'received_at', r.received_at, 'due_on', r.due_on,
         'extension_reason', r.extension_reason, 'answer', r.answer,
         'closed_at', r.closed_at,
         'timeline', (SELECT coalesce(json_agg(json_build_object(
                          'at', e.created_at, 'what', e.kind, 'by', e.actor_display,
                          'text', e.body) ORDER BY e.created_at), '[]')
                        FROM privacy_request_events e
                       WHERE e.tenant_id = r.tenant_id AND e.request_id = r.id
                         AND NOT e.internal)) ORDER BY r.received_at), '[]')::text AS doc
FROM privacy_requests r WHERE r.tenant_id = $1 AND r.member_id = $2""",
    "sessions.json": """
SELECT coalesce(json_agg(json_build_object(
         'started_at', s.created_at, 'method', s.auth_method, 'last_seen_at', s.last_seen_at,
         'expires_at', s.expires_at, 'ended_at', s.revoked_at, 'ended_because', s.revoked_reason,
         'address', s.client_addr, 'browser', s.user_agent,
         'identity_provider_subject', s.idp_subject) ORDER BY s.created_at), '[]')::text AS doc
FROM sessions s WHERE s.tenant_id = $1 AND s.member_id = $2""",
    "sign_ins.json": """
SELECT coalesce(json_agg(json_build_object(
         'at', i.at, 'method', i.method, 'outcome', i.outcome, 'reason', i.reason,
         'email', i.email, 'identity_provider', i.idp,
         'identity_provider_subject', i.idp_subject, 'address', i.client_addr,
         'browser', i.user_agent) ORDER BY i.at), '[]')::text AS doc
FROM sign_ins i
WHERE i.tenant_id = $1 AND (i.member_id = $2 OR i.email = lower($3))""",
    "emails.json": """
SELECT coalesce(json_agg(json_build_object(
         'written_at', m.created_at, 'to', m.recipients, 'subject', m.subject,
         'text', m.text, 'status', m.status, 'sent_at', m.sent_at) ORDER BY m.created_at),
       '[]')::text AS doc
FROM mail_messages m
WHERE m.tenant_id = $1 AND $2::uuid IS NOT NULL
  AND (m.recipients ? $3 OR strpos(m.text, $3) > 0
       OR (length($4) >= 4 AND strpos(m.text, $4) > 0))""",
    "scim.json": """
SELECT coalesce((SELECT json_build_object('userName', u.user_name, 'attributes', u.attributes,
                                          'deleted_at', u.deleted_at)
                   FROM scim_users u WHERE u.tenant_id = $1 AND u.id = $2), 'null')::text AS doc""",
    "departures.json": """
SELECT coalesce(json_agg(json_build_object(
         'id', d.id, 'last_day', d.last_day, 'status', d.status, 'reason', d.reason,
         'access_ends_at', d.suspend_at, 'export_until', d.export_until,
         'deleted_after', d.purge_at, 'started_at', d.created_at) ORDER BY d.created_at),
       '[]')::text AS doc
FROM departures d WHERE d.tenant_id = $1 AND d.member_id = $2""",
}

#: The member's audit events (opened in Python: personal fields are sealed).
AUDIT_SQL = """
SELECT e.id, e.occurred_at, e.actor_display, e.action, e.target_type, e.target_id, e.before,
       e.after
FROM audit_events e
WHERE e.tenant_id = $1 AND (e.actor = 'member:' || $2::uuid::text
                            OR (e.target_type = 'member' AND e.target_id = $2::uuid::text))
ORDER BY e.id"""


async def _doc(sql: str, *args: Any) -> bytes:
    row = await db.fetch_one(sql, *args)
    return (row["doc"] if row else "null").encode()


async def _settings_doc(member_id: uuid.UUID) -> bytes:
    choices = {
        r["setting"]: r["value"]
        for r in await db.fetch(
            "SELECT setting, value FROM member_choices WHERE tenant_id = $1 AND member_id = $2",
            db.current_org(),
            member_id,
        )
    }
    effective = (await policy.effective_settings([member_id])).get(member_id, {})
    doc = {
        "your_choices": {k: json.loads(v) if isinstance(v, str) else v for k, v in choices.items()},
        "effective": {
            key: {
                "value": r.value,
                "locked_by_organisation": r.locked,
                "source": r.source.kind.value,
                "reason": r.reason,
            }
            for key, r in sorted(effective.items())
        },
    }
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str).encode()


async def collect_files(
    request: PrivacyRequest, export: PrivacyExport, now: datetime
) -> list[tuple[str, bytes]]:
    """Every file of the bundle, README first."""
    org = db.current_org()
    # The documents' times are built in SQL (json_build_object writes a timestamptz in the
    # session's zone): UTC for this transaction whatever the server's or role's default.
    await db.fetch_one("SELECT set_config('TimeZone', 'UTC', true) AS zone")
    member = await get_member(request.member_id)
    organisation = await db.fetch_one("SELECT name FROM organisations WHERE id = $1", org)
    own: list[tuple[str, bytes]] = [("profile.json", await _doc(PROFILE_SQL, org, member.id))]
    for name in bundle.OWN_FILES:
        if name == "profile.json":
            continue
        if name == "settings.json":
            own.append((name, await _settings_doc(member.id)))
        elif name == "audit_events.json":
            own.append((name, await _audit_doc(org, member.id)))
        elif name == "emails.json":
            own.append(
                (
                    name,
                    await _doc(LIST_SQL[name], org, member.id, member.email.lower(), member.name),
                )
            )
        elif name == "sign_ins.json":
            own.append((name, await _doc(LIST_SQL[name], org, member.id, member.email.lower())))
        else:
            own.append((name, await _doc(LIST_SQL[name], org, member.id)))
    parts = {p.product_id: p for p in await PrivacyExportPart.filter(export_id=export.id)}
    asked = {uuid.UUID(p) for p in export.expected_product_ids} | set(parts)
    products = await Product.filter(id__in=list(asked)).order_by("key")
    product_parts = [
        bundle.ProductPart(p.key, p.name, bytes(parts[p.id].data) if p.id in parts else None)
        for p in products
    ]
    # The products the member has an account in, as product_accounts.json lists them.
    accounts = json.loads(dict(own)["product_accounts.json"])
    readme = bundle.readme(
        organisation=organisation["name"] if organisation else "",
        member_name=member.name,
        member_email=member.email,
        request_id=str(request.id),
        built_at=now,
        products=product_parts,
        recipients=sorted({a["product"] for a in accounts}),
        retention=asdict(await retention.get_retention()),
    )
    files = [
        *own,
        *[(f"products/{p.key}.json", p.data) for p in product_parts if p.data is not None],
    ]
    listed = bundle.index(
        request_id=str(request.id),
        member_id=str(member.id),
        built_at=now,
        files=files,
        products=product_parts,
        sources=datamap.export_sources(),
    )
    return [("README.txt", readme.encode()), (bundle.INDEX_FILE, listed), *files]


async def _audit_doc(org: uuid.UUID, member_id: uuid.UUID) -> bytes:
    """The member's audit events with their sealed fields opened (they are the member's)."""
    rows = await db.fetch(AUDIT_SQL, org, member_id)
    events = await shredding.reveal_rows(
        [
            {
                **r,
                "before": json.loads(r["before"]) if isinstance(r["before"], str) else r["before"],
                "after": json.loads(r["after"]) if isinstance(r["after"], str) else r["after"],
            }
            for r in rows
        ]
    )
    doc = [
        {
            "id": e["id"],
            "occurred_at": e["occurred_at"],
            "actor": e["actor_display"],
            "action": e["action"],
            "target_type": e["target_type"],
            "target_id": e["target_id"],
            "before": e["before"],
            "after": e["after"],
        }
        for e in events
    ]
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str).encode()


async def build_export(export_id: uuid.UUID, *, actor: Actor) -> PrivacyExport | None:
    """Build and store the bundle of a collecting export (None when there is nothing to
    build: already built, expired, or gone), tell the member, and queue its expiry."""
    export = await PrivacyExport.filter(id=export_id).select_for_update().first()
    if export is None or export.status != ExportStatus.COLLECTING:
        return None
    request = await get_request(export.request_id)
    now = datetime.now(UTC)
    built = bundle.build_zip(await collect_files(request, export, now))
    link_days = (await get_policy()).export_link_days
    export.bundle, export.size, export.sha256 = built.content, len(built.content), built.sha256
    export.files, export.status = built.files, ExportStatus.READY
    export.ready_at, export.expires_at = now, now + timedelta(days=link_days)
    await export.save()
    holds = await member_hold_explanation(request.member_id)
    await add_event(
        request,
        "export_ready",
        actor=actor,
        body="Your data is ready to download" + (f"\n{holds.as_text()}" if holds else ""),
        data={"expires_at": export.expires_at, "bytes": export.size},
    )
    await audit.record(
        "privacy_request.export_built",
        "privacy_request",
        request.id,
        actor=actor,
        after={
            "export_id": export.id,
            "bytes": export.size,
            "sha256": export.sha256,
            "files": len(built.files),
            "expires_at": export.expires_at,
        },
    )
    member = await get_member(request.member_id)
    await mail.send_later(
        "export_ready",
        to=[member.email],
        context={
            "member_name": member.name,
            "expires_on": export.expires_at.date().isoformat(),
            "link_path": account_path(request.id),
        },
        key=f"privacy_export:{export.id}:{now.isoformat()}:ready",
    )
    await jobs.enqueue(
        EXPIRE_JOB,
        {"export_id": str(export.id), "expires_at": export.expires_at.isoformat()},
        key=f"privacy_export:{export.id}:{now.isoformat()}:expire",
        run_at=export.expires_at,
    )
    return export


async def expire_export(export_id: uuid.UUID, expires_at: datetime, *, actor: Actor) -> bool:
    """Delete the bundle whose link expires at ``expires_at`` (the job runs then); False
    when there is nothing to do: gone, already expired, or rebuilt with a later expiry."""
    export = await PrivacyExport.filter(id=export_id).select_for_update().first()
    if export is None or export.status != ExportStatus.READY or export.expires_at != expires_at:
        return False
    export.status, export.bundle = ExportStatus.EXPIRED, None
    await export.save(update_fields=["status", "bundle", "updated_at"])
    # The products' parts are copies of the member's data too: they go with the bundle.
    await PrivacyExportPart.filter(export_id=export.id).delete()
    await audit.record(
        "privacy_request.export_expired",
        "privacy_request",
        export.request_id,
        actor=actor,
        after={"export_id": export.id},
    )
    return True


async def downloadable(request: PrivacyRequest, *, actor: Actor) -> PrivacyExport:
    """The ready export of the member's request, its download recorded; NotFoundError
    when there is none (not built yet, or expired)."""
    from tenants.errors import NotFoundError

    export = await PrivacyExport.filter(request_id=request.id).first()
    now = datetime.now(UTC)
    if (
        export is None
        or export.status != ExportStatus.READY
        or export.bundle is None
        or export.expires_at is None
        or export.expires_at <= now
    ):
        raise NotFoundError("the export is not available (not ready yet, or expired)")
    await audit.record(
        "privacy_request.export_downloaded",
        "privacy_request",
        request.id,
        actor=actor,
        after={"export_id": export.id, "bytes": export.size},
    )
    return export


# --- erasure ----------------------------------------------------------------------------


async def erase_for_request(
    request_id: uuid.UUID, kinds: Collection[ContentKind], *, member: bool = True, actor: Actor
) -> dict[str, Any]:
    """Erase the member's content items of ``kinds`` (default personal only: work content
    is the organisation's and kept for its required retention), except items under legal
    hold; products are told which of their items went. The evidence (what was erased in
    which product, what was kept and why, by whom, the audit event) is stored on the
    request and in the audit trail. 409 unless an open erasure request.

    With ``member`` (the default) the member is then erased as the personal-data map
    says (``tenants.privacy.erasure.erase_member``; personal content always goes then):
    the evidence lists what was kept, why and until when, and the timeline tells the
    member the same."""
    request = await get_request(request_id, for_update=True)
    _open(request)
    await _not_erased(request, "the erasure is done; its evidence is on the request")
    if not rules.can_erase(request.kind):
        raise ConflictError(
            f"erasure answers erasure requests, not {request.kind.value}",
            extra={"kind": request.kind.value},
        )
    if not kinds:
        raise InvalidInputError(
            "choose what to erase", fields=[FieldProblem("kinds", "at least one kind")]
        )
    await begin_work(request, actor=actor)  # saved with the evidence below
    if member:
        kinds = {*kinds, ContentKind.PERSONAL}
    evidence = await departures.erase_member_content(
        request.member_id,
        kinds=set(kinds),
        actor=actor,
        reason=f"privacy request {request.id} (erasure)",
    )
    kept = await db.fetch(
        "SELECT kind, count(*) AS n FROM content_items WHERE tenant_id = $1 AND member_id = $2 "
        "GROUP BY kind",
        db.current_org(),
        request.member_id,
    )
    run = {
        **audit.jsonable(evidence),
        "kinds": sorted(k.value for k in kinds),
        "erased_by": actor.display,
        "erased_by_ref": actor.ref,
        "kept_by_kind": {r["kind"]: r["n"] for r in kept},
    }
    # What the member is told about held items (categories, obligation, the member-facing
    # text, the review date; never the hold's confidential reason), read before the member
    # record is anonymised.
    holds = await member_hold_explanation(request.member_id)
    summary = f"\n{holds.as_text()}" if holds else ""
    person = await get_member(request.member_id)
    if member:
        erased = await erasure.erase_member(
            request.member_id, why=f"privacy request {request.id} (erasure)", actor=actor
        )
        run["member_erasure"] = erased.to_json()
        summary += "\n" + erasure.kept_summary(erased)
    runs = list((request.erasure_evidence or {}).get("runs", []))
    runs.append(run)
    request.erasure_evidence = {"runs": runs}
    await request.save(update_fields=["erasure_evidence", "status", "updated_at"])
    deleted = sum(p.get("deleted", 0) for p in run["by_product"].values())
    held = sum(p.get("held", 0) for p in run["by_product"].values())
    await add_event(
        request,
        "erased",
        actor=actor,
        body=f"Deleted {counted(deleted, 'item')} in {counted(len(run['by_product']), 'product')}; "
        f"{held} kept under legal hold" + summary,
        data={"deleted": deleted, "held": held, "kinds": run["kinds"]},
    )
    await audit.record(
        "privacy_request.erased", "privacy_request", request.id, actor=actor, after=run
    )
    if member and person.status is not MemberStatus.PURGED:
        # The last message to the address the erasure has just removed (GDPR Art. 12(3),
        # 19): the member can no longer sign in to read the timeline, and the officer's
        # answer, written afterwards, has no address to go to. The address stays only in
        # this message, which forgets it once sent (``forgotten_once_sent``).
        await mail.send_later(
            "request_erased",
            to=[person.email],
            context={
                "member_name": person.name,
                "kind_label": rules.KIND_LABELS[request.kind],
                "outcome": f"Deleted {counted(deleted, 'item')} in "
                f"{counted(len(run['by_product']), 'product')}; {held} kept under legal"
                f" hold.{summary}",
            },
            key=f"privacy_request:{request.id}:erased",
        )
    return run
