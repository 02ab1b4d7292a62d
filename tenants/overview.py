"""What the console's overview reads: what needs attention now, and the trends. Every
query is an index range of one organisation sized by what it returns (no scan of the
audit log: sign-ins per day are counters kept by a trigger on those audit events)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tenants import db
from tenants.members.lifecycle import MemberStatus
from tenants.text import counted

#: Items listed per attention section (the count says how many there are in all).
LISTED = 5
#: Refused sign-ins that say the identity provider's set-up is wrong or down, rather than
#: that one person may not sign in.
SETUP_FAILURES = (
    "idp_unreachable",
    "idp_metadata_invalid",
    "token_exchange_failed",
    "id_token_bad_signature",
    "id_token_wrong_issuer",
    "id_token_wrong_audience",
    "issuer_mismatch",
)


@dataclass(frozen=True, slots=True)
class SetupItem:
    """Something about the organisation's domains or identity set-up that needs an admin:
    what, in words, and the page where it is fixed."""

    text: str
    link: str


@dataclass(frozen=True, slots=True)
class Attention:
    pending_grants: int
    grants: list[dict[str, Any]]
    requests_due: int
    requests: list[dict[str, Any]]
    departures_this_week: list[dict[str, Any]]
    dead_jobs: int
    failing_products: list[dict[str, Any]]
    break_glass_sessions: list[dict[str, Any]]
    setup: list[SetupItem] = field(default_factory=list)
    #: Items under legal hold with no review date (placed before review dates existed):
    #: the reminder to give each a review date and a member-facing text.
    holds_without_review: int = 0
    unreviewed_holds: list[dict[str, Any]] = field(default_factory=list)
    #: Items under legal hold whose review date has passed: the hold is due for review.
    holds_overdue: int = 0

    @property
    def anything(self) -> bool:
        return bool(
            self.setup
            or self.pending_grants
            or self.requests_due
            or self.departures_this_week
            or self.dead_jobs
            or self.failing_products
            or self.break_glass_sessions
            or self.holds_without_review
            or self.holds_overdue
        )


async def attention(
    today: date,
    *,
    grants: bool,
    requests: bool,
    operations: bool,
    domains: bool = False,
    identity: bool = False,
    holds: bool = False,
) -> Attention:
    """What waits for someone, for the parts the admin may see (``grants``: data-access
    approvals; ``requests``: privacy requests; ``operations``: departures, jobs, webhooks,
    break-glass sessions; ``domains`` and ``identity``: see ``setup_needs``; ``holds``:
    legal holds without a review date, for admins who may place and lift holds)."""
    org = db.current_org()
    pending, grant_rows, due, request_rows = 0, [], 0, []
    departures, dead, failing, glass = [], 0, [], []
    if grants:
        pending = await _count(
            "SELECT count(*) AS n FROM access_grants WHERE tenant_id = $1 AND status = 'requested'",
            org,
        )
        grant_rows = await db.fetch(
            # Who asked (the admin who would get access) and whose data: a member or a unit.
            "SELECT g.id, g.created_at, g.justification, m.name AS member_name, "
            "u.name AS unit_name, a.name AS admin_name FROM access_grants g "
            "LEFT JOIN members m ON m.tenant_id = g.tenant_id AND m.id = g.member_id "
            "LEFT JOIN units u ON u.tenant_id = g.tenant_id AND u.id = g.unit_id "
            "LEFT JOIN members a ON a.tenant_id = g.tenant_id AND a.id = g.admin_id "
            "WHERE g.tenant_id = $1 AND g.status = 'requested' ORDER BY g.created_at LIMIT $2",
            org,
            LISTED,
        )
    if requests:
        soon = today + timedelta(days=7)
        due = await _count(
            "SELECT count(*) AS n FROM privacy_requests WHERE tenant_id = $1 "
            "AND status IN ('received', 'in_progress') AND due_on <= $2",
            org,
            soon,
        )
        request_rows = await db.fetch(
            "SELECT r.id, r.kind, r.due_on, m.name AS member_name FROM privacy_requests r "
            "LEFT JOIN members m ON m.tenant_id = r.tenant_id AND m.id = r.member_id "
            "WHERE r.tenant_id = $1 AND r.status IN ('received', 'in_progress') AND r.due_on <= $2 "
            "ORDER BY r.due_on LIMIT $3",
            org,
            soon,
            LISTED,
        )
    if operations:
        monday = today - timedelta(days=today.weekday())
        departures = await db.fetch(
            "SELECT d.id, d.last_day, m.name AS member_name FROM departures d "
            "LEFT JOIN members m ON m.tenant_id = d.tenant_id AND m.id = d.member_id "
            "WHERE d.tenant_id = $1 AND d.status = 'running' AND d.last_day BETWEEN $2 AND $3 "
            "ORDER BY d.last_day LIMIT $4",
            org,
            monday,
            monday + timedelta(days=6),
            LISTED,
        )
        dead = await _count(
            "SELECT count(*) AS n FROM jobs WHERE tenant_id = $1 AND status = 'dead'", org
        )
        failing = await db.fetch(
            "SELECT p.id, p.name, count(*) AS dead FROM webhook_deliveries w "
            "JOIN products p ON p.tenant_id = w.tenant_id AND p.id = w.product_id "
            "WHERE w.tenant_id = $1 AND w.status = 'dead' GROUP BY p.id, p.name ORDER BY p.name LIMIT $2",
            org,
            LISTED,
        )
        glass = await db.fetch(
            "SELECT s.created_at, s.expires_at, m.id AS member_id, m.name AS member_name FROM sessions s "
            "LEFT JOIN members m ON m.tenant_id = s.tenant_id AND m.id = s.member_id "
            "WHERE s.tenant_id = $1 AND s.auth_method = 'break_glass' AND s.revoked_at IS NULL "
            "AND s.expires_at > now() ORDER BY s.expires_at LIMIT $2",
            org,
            LISTED,
        )
    unreviewed, unreviewed_rows, overdue = 0, [], 0
    if holds:
        # Both read the held items alone (the partial indexes of migration 0038).
        overdue = await _count(
            "SELECT count(*) AS n FROM content_items WHERE tenant_id = $1 AND legal_hold "
            "AND hold_review_on < $2",
            org,
            # The UTC day, as the holds list counts it (not the session's current_date).
            today,
        )
        unreviewed = await _count(
            "SELECT count(*) AS n FROM content_items WHERE tenant_id = $1 AND legal_hold "
            "AND hold_review_on IS NULL",
            org,
        )
        if unreviewed:
            unreviewed_rows = await db.fetch(
                "SELECT c.id, c.title, p.name AS product_name, m.name AS member_name "
                "FROM content_items c "
                "LEFT JOIN products p ON p.tenant_id = c.tenant_id AND p.id = c.product_id "
                "LEFT JOIN members m ON m.tenant_id = c.tenant_id AND m.id = c.member_id "
                "WHERE c.tenant_id = $1 AND c.legal_hold AND c.hold_review_on IS NULL "
                "ORDER BY c.updated_at, c.id LIMIT $2",
                org,
                LISTED,
            )
    setup = await setup_needs(domains=domains, identity=identity)
    return Attention(
        pending,
        grant_rows,
        due,
        request_rows,
        departures,
        dead,
        failing,
        glass,
        setup=setup,
        holds_without_review=unreviewed,
        unreviewed_holds=unreviewed_rows,
        holds_overdue=overdue,
    )


async def setup_needs(*, domains: bool, identity: bool) -> list[SetupItem]:
    """Domains and identity set-up needing action: (``domains``) a verified domain whose
    record disappeared, a domain still unproven, or none proven at all; (``identity``) no
    identity provider, one switched off, a failed connection test, sign-ins refused in the
    last 24 hours for a set-up reason (SETUP_FAILURES), a Keycloak mirror that failed."""
    org = db.current_org()
    items: list[SetupItem] = []
    if domains:
        rows = await db.fetch(
            "SELECT name, status FROM domains WHERE tenant_id = $1 ORDER BY name", org
        )
        for row in rows:
            if row["status"] == "flagged":
                items.append(
                    SetupItem(
                        f"{row['name']}: its DNS verification record has disappeared; publish it "
                        "again or remove the domain",
                        "/console/domains",
                    )
                )
        pending = [r["name"] for r in rows if r["status"] == "pending"]
        if pending:
            names = ", ".join(pending[:LISTED]) + (" …" if len(pending) > LISTED else "")
            items.append(
                SetupItem(
                    f"{counted(len(pending), 'domain')} not verified yet ({names}): "
                    + (
                        "it routes no sign-in and no provisioning until its TXT record is checked"
                        if len(pending) == 1
                        else "they route no sign-in and no provisioning until their TXT record "
                        "is checked"
                    ),
                    "/console/domains",
                )
            )
        if not any(r["status"] in ("verified", "flagged") for r in rows):
            items.append(
                SetupItem(
                    "No verified email domain: sign-in by email address finds no organisation and "
                    "provisioning accepts no address",
                    "/console/domains",
                )
            )
    if identity:
        connection = await db.fetch_one(
            "SELECT enabled, last_test_result FROM sso_connections WHERE tenant_id = $1", org
        )
        if connection is None:
            items.append(
                SetupItem(
                    "No identity provider is set up: members sign in only with invitation links "
                    "or passwords",
                    "/console/settings",
                )
            )
        elif not connection["enabled"]:
            items.append(
                SetupItem(
                    "Sign-in through the identity provider is switched off", "/console/settings"
                )
            )
        else:
            result = connection["last_test_result"]
            if isinstance(result, str):
                result = json.loads(result)
            if isinstance(result, dict) and result.get("ok") is False:
                items.append(
                    SetupItem(
                        "The last test of the identity provider connection failed",
                        "/console/settings",
                    )
                )
            refused = await _count(
                "SELECT count(*) AS n FROM sign_ins WHERE tenant_id = $1 AND reason = ANY($2) "
                "AND at > now() - interval '24 hours'",
                org,
                list(SETUP_FAILURES),
            )
            if refused:
                items.append(
                    SetupItem(
                        f"{counted(refused, 'sign-in')} through the identity provider failed in "
                        "the last 24 hours for a set-up reason (unreachable, keys, client or "
                        "issuer)",
                        "/console/sign-ins?method=sso&outcome=refused",
                    )
                )
        backend = await db.fetch_one(
            "SELECT kind, last_error FROM identity_backends WHERE tenant_id = $1", org
        )
        if backend is not None and backend["kind"] != "local" and backend["last_error"]:
            items.append(
                SetupItem(
                    f"Mirroring into {backend['kind'].title()} failed: {backend['last_error'][:160]}",
                    "/console/identity",
                )
            )
    return items


async def _count(sql: str, *args: Any) -> int:
    row = await db.fetch_one(sql, *args)
    return int(row["n"]) if row else 0


async def member_counts(today: date) -> dict[str, int]:
    """Members per status now (every status present, 0 when none), recorded as today's row
    of ``member_status_days`` so the 90-day chart has a point per day the counts were read."""
    counts = {s.value: 0 for s in MemberStatus}
    # The trigger-kept counters (migration 0018_sized_by_page): no scan of members.
    for row in await db.fetch(
        "SELECT name, n FROM tenant_counters WHERE tenant_id = $1 AND name = ANY($2::text[])",
        db.current_org(),
        [f"members.{s}" for s in counts],
    ):
        status = str(row["name"]).removeprefix("members.")
        if status in counts:
            counts[status] = int(row["n"])
    await db.connection().execute_query(
        "INSERT INTO member_status_days (tenant_id, day, status, members) "
        "SELECT $1, $2, s, n FROM unnest($3::text[], $4::int[]) AS t(s, n) "
        "ON CONFLICT (tenant_id, day, status) DO UPDATE SET members = EXCLUDED.members",
        [db.current_org(), today, list(counts), list(counts.values())],
    )
    return counts


async def member_history(today: date, days: int = 90) -> dict[str, list[int | None]]:
    """Members per status for each of the last ``days`` days (oldest first); a day without a
    recorded row repeats the day before (None before the first record)."""
    start = today - timedelta(days=days - 1)
    rows = await db.fetch(
        "SELECT day, status, members FROM member_status_days WHERE tenant_id = $1 AND day >= $2",
        db.current_org(),
        start,
    )
    by_day: dict[date, dict[str, int]] = {}
    for row in rows:
        by_day.setdefault(row["day"], {})[row["status"]] = int(row["members"])
    series: dict[str, list[int | None]] = {s.value: [] for s in MemberStatus}
    last: dict[str, int] | None = None
    for offset in range(days):
        day = start + timedelta(days=offset)
        last = by_day.get(day, last)
        for status in series:
            series[status].append(last.get(status, 0) if last is not None else None)
    return series


#: The audit actions counted per day, and the shards of each day's counter (migration
#: 0023_units_sized_by_page keeps them: ``<action>.<YYYY-MM-DD>.<shard>``).
SIGN_IN_ACTIONS = {"session.signed_in": "signed_in", "session.sign_in_refused": "refused"}
SIGN_IN_SHARDS = 8


async def sign_ins_per_day(today: date, days: int = 14) -> dict[str, list[int]]:
    """Sign-ins and refused sign-ins per day (UTC) for the last ``days`` days (oldest
    first), from the counters kept by a trigger on those audit events: a fixed number of
    counters read by name, however many people signed in."""
    start = today - timedelta(days=days - 1)
    dates = [(start + timedelta(days=offset)).isoformat() for offset in range(days)]
    names = [
        f"{action}.{day}.{shard}"
        for action in SIGN_IN_ACTIONS
        for day in dates
        for shard in range(SIGN_IN_SHARDS)
    ]
    series = {"signed_in": [0] * days, "refused": [0] * days}
    rows = await db.fetch(
        "SELECT name, n FROM tenant_counters WHERE tenant_id = $1 AND name = ANY($2::text[])",
        db.current_org(),
        names,
    )
    index = {day: i for i, day in enumerate(dates)}
    for row in rows:
        action, day, _shard = str(row["name"]).rsplit(".", 2)
        series[SIGN_IN_ACTIONS[action]][index[day]] += int(row["n"])
    return series


async def data_accesses_per_week(today: date, weeks: int = 12) -> dict[str, list[int]]:
    """Data-access checks allowed and refused per week (Monday first) for ``weeks`` weeks."""
    monday = today - timedelta(days=today.weekday())
    start = monday - timedelta(weeks=weeks - 1)
    rows = await db.fetch(
        "SELECT date_trunc('week', checked_at AT TIME ZONE 'UTC')::date AS week, allowed, count(*) AS n "
        "FROM access_log WHERE tenant_id = $1 AND checked_at >= $2 GROUP BY 1, 2",
        db.current_org(),
        datetime.combine(start, time(), UTC),
    )
    series = {"allowed": [0] * weeks, "refused": [0] * weeks}
    for row in rows:
        index = (row["week"] - start).days // 7
        if 0 <= index < weeks:
            series["allowed" if row["allowed"] else "refused"][index] += int(row["n"])
    return series
